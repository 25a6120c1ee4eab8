import base64
import math
import struct

import httpx
import openai
import pytest

from simulator.embeddings import embed, encode_base64, parse_inputs
from tests.support.openapi import validate


def test_embed_is_unit_norm_and_deterministic() -> None:
    vector = embed("hello", 384)
    assert len(vector) == 384 and math.isclose(sum(v * v for v in vector), 1.0, rel_tol=1e-9)
    assert vector == embed("hello") != embed("hello!")
    decoded = struct.unpack("<4f", base64.b64decode(encode_base64([0.5, -0.25, 1.0, 0.0])))
    assert decoded == (0.5, -0.25, 1.0, 0.0)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a b", [("a b", 2)]),
        (["x", "y z"], [("x", 1), ("y z", 2)]),
        ([1, 2, 3], [("1 2 3", 3)]),
        ([[1], [2, 3]], [("1", 1), ("2 3", 2)]),
    ],
)
def test_input_shapes(value: object, expected: list[tuple[str, int]]) -> None:
    assert parse_inputs(value) == expected


def test_float_response_matches_schema(http: httpx.Client) -> None:
    body = http.post(
        "/v1/embeddings", json={"model": "sim-embed", "input": ["a", "b c"], "encoding_format": "float"}
    ).json()
    validate(body, "CreateEmbeddingResponse")
    assert body["usage"] == {"prompt_tokens": 3, "total_tokens": 3}
    assert body["data"][1]["embedding"] == pytest.approx(embed("b c"))


def test_openai_client_float_base64_and_dimensions(client: openai.OpenAI) -> None:
    as_float = client.embeddings.create(model="e", input="hello", encoding_format="float").data[0].embedding
    as_b64 = client.embeddings.create(model="e", input="hello").data[0].embedding  # client asks for base64
    assert as_b64 == pytest.approx(as_float, abs=1e-6)
    small = client.embeddings.create(model="e", input=[[1, 2], [3]], dimensions=8, encoding_format="float")
    assert [len(d.embedding) for d in small.data] == [8, 8]


def test_bad_input_is_a_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.embeddings.create(model="e", input=[], encoding_format="float")
    assert info.value.param == "input"
