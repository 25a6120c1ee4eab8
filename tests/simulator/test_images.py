import base64

import httpx
import openai

from .test_media import parse_png


def test_b64_images(client: openai.OpenAI) -> None:
    done = client.images.generate(
        model="sim-image", prompt="a red fox", n=2, size="256x128", response_format="b64_json"
    )
    pngs = [base64.b64decode(d.b64_json or "") for d in done.data or []]
    assert [parse_png(p)[:2] for p in pngs] == [(64, 64), (64, 64)]
    assert pngs[0] != pngs[1]


def test_url_images_are_served(client: openai.OpenAI, http: httpx.Client) -> None:
    done = client.images.generate(model="sim-image", prompt="a fox", size="32x16", response_format="url")
    url = (done.data or [])[0].url or ""
    assert "/_sim/images/" in url
    fetched = httpx.get(url)
    assert fetched.headers["content-type"] == "image/png"
    assert parse_png(fetched.content)[:2] == (32, 16)
    assert http.get("/_sim/images/img_missing.png").status_code == 404
