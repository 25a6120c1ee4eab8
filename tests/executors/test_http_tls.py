"""https through a pinned address: the name stays in SNI and in the certificate check, and a brokered
secret is not sent once an https request is redirected to plain http.

On loopback: ``api.example.test`` resolves (stub) to a public-looking address that the connect hook
sends to a TLS service (port 443) or a plain one (port 80); the client trusts the test's own cert.
"""

from __future__ import annotations

import datetime
import json
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from executors.http_tool import http_request
from executors.spec import BrokeredSecret, Grants, Job, Limits, Result

NAME = "api.example.test"
ADDRESS = "93.184.216.34"
TOKEN = "tok-tls-5e1f0c2a9b"


def self_signed(name: str, folder: Path) -> tuple[Path, Path, str]:
    """A certificate for ``name`` that is its own CA: (cert file, key file, PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (folder / "cert.pem").write_bytes(pem)
    (folder / "key.pem").write_bytes(key_pem)
    return folder / "cert.pem", folder / "key.pem", pem.decode()


class Site:
    """``/start`` redirects to plain http on the same name; anything else echoes the headers."""

    def __init__(self) -> None:
        self.auth: list[str | None] = []
        self.port = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.auth.append(request.headers.get("Authorization"))
        if request.path == "/start":
            return web.Response(status=302, headers={"Location": f"http://{NAME}/echo"})
        return web.json_response({"headers": dict(request.headers)})


@asynccontextmanager
async def serve(site: Site, tls: ssl.SSLContext | None) -> AsyncIterator[None]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", site.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls).start()
    site.port = runner.addresses[0][1]
    try:
        yield
    finally:
        await runner.cleanup()


class World:
    def __init__(self, tmp: Path) -> None:
        cert, key, pem = self_signed(NAME, tmp)
        self.server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.server_tls.load_cert_chain(cert, key)
        self.sni: list[str | None] = []
        self.server_tls.sni_callback = self._record_sni
        self.client_tls = ssl.create_default_context(cadata=pem)
        self.secure, self.plain = Site(), Site()

    def _record_sni(self, _obj: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        self.sni.append(name)

    async def resolve(self, host: str, port: int) -> list[str]:
        return [ADDRESS]  # every name here resolves to the one public-looking address

    def dial(self, address: str, port: int) -> tuple[str, int]:
        assert address == ADDRESS
        return "127.0.0.1", self.secure.port if port == 443 else self.plain.port

    async def run(self, url: str) -> Result:
        grants = Grants(egress=(NAME, "other.example.test"), brokered={
            "T": BrokeredSecret(TOKEN, (NAME,), header="Authorization", format="Bearer {value}")})
        job = Job(id="t1", tool="http_request", runtime="http", stdin=json.dumps({"url": url}),
                  limits=Limits(wall_seconds=5.0), grants=grants)
        return await http_request(job, self.resolve, self.dial, self.client_tls)


@asynccontextmanager
async def world(tmp: Path) -> AsyncIterator[World]:
    w = World(tmp)
    async with serve(w.secure, w.server_tls), serve(w.plain, None):
        yield w


def status(result: Result) -> Any:
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)["status"]


async def test_https_to_a_pinned_address_keeps_the_name_in_sni_and_the_certificate_check(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        assert status(await w.run(f"https://{NAME}/echo")) == 200
        assert w.sni == [NAME] and w.secure.auth == [f"Bearer {TOKEN}"]
        refused = await w.run("https://other.example.test/echo")  # same address, cert not for that name
        assert refused.exit_code == 1 and "certificate" in refused.stderr.lower()


async def test_a_brokered_secret_is_not_sent_after_a_redirect_from_https_to_http(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        assert status(await w.run(f"https://{NAME}/start")) == 200
        assert w.secure.auth == [f"Bearer {TOKEN}"] and w.plain.auth == [None]
