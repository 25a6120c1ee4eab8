"""``http_request`` follows redirects itself and checks every hop before it connects.

All on loopback: names go through a stub resolver to public-looking addresses, and a connect hook
(``dial``) sends a checked address to a loopback service. Any address the hook does not know lands
on the ``internal`` service, which must never receive anything.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp import web

from executors.http_tool import MAX_REDIRECTS, http_request
from executors.spec import BrokeredSecret, Grants, Job, Limits, Result

PUBLIC = {"api.example.test": "93.184.216.34", "other.example.test": "93.184.216.35",
          "internal.example.test": "10.0.0.1", "rebind.example.test": "93.184.216.36"}
GRANTED = ("api.example.test", "other.example.test", "internal.example.test", "rebind.example.test")


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: str


@dataclass
class Service:
    """A loopback HTTP service: ``?to=URL&status=N`` redirects, ``/loop`` redirects to itself, anything
    else echoes the request."""

    seen: list[Seen] = field(default_factory=list)
    port: int = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.text()
        self.seen.append(Seen(request.method, request.path, dict(request.query), dict(request.headers), body))
        if request.path == "/loop":
            return web.Response(status=302, headers={"Location": "/loop"})
        if "to" in request.query:
            status = int(request.query.get("status", "302"))
            return web.Response(status=status, headers={"Location": request.query["to"]})
        echo = {"method": request.method, "body": body, "query": dict(request.query), "headers": dict(request.headers)}
        return web.json_response(echo)


@asynccontextmanager
async def serving(service: Service) -> AsyncIterator[Service]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", service.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    service.port = runner.addresses[0][1]
    try:
        yield service
    finally:
        await runner.cleanup()


@dataclass
class Net:
    """The stub resolver and the connect hook, with what each was asked."""

    api: Service
    other: Service
    internal: Service
    lookups: list[str] = field(default_factory=list)
    dials: list[tuple[str, int]] = field(default_factory=list)

    async def resolve(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        if host == "rebind.example.test" and self.lookups.count(host) > 1:
            return ["127.0.0.1"]  # a rebinding answer: must never be asked for, let alone used
        return [PUBLIC[host]]

    def dial(self, address: str, port: int) -> tuple[str, int]:
        self.dials.append((address, port))
        ports = {PUBLIC["api.example.test"]: self.api.port, PUBLIC["other.example.test"]: self.other.port,
                 PUBLIC["rebind.example.test"]: self.api.port}
        return "127.0.0.1", ports.get(address, self.internal.port)

    async def run(self, args: Mapping[str, Any], grants: Grants | None = None) -> Result:
        job = Job(id="h1", tool="http_request", runtime="http", stdin=json.dumps(args),
                  limits=Limits(wall_seconds=5.0), grants=grants or Grants(egress=GRANTED))
        return await http_request(job, self.resolve, self.dial)


@asynccontextmanager
async def network() -> AsyncIterator[Net]:
    async with AsyncExitStack() as stack:
        api = await stack.enter_async_context(serving(Service()))
        other = await stack.enter_async_context(serving(Service()))
        internal = await stack.enter_async_context(serving(Service()))
        yield Net(api, other, internal)


def redirect(to: str, status: int = 307, host: str = "api.example.test") -> str:
    return f"http://{host}/r?{urlencode({'status': status, 'to': to})}"


def answer(result: Result) -> dict[str, Any]:
    assert result.exit_code == 0, result.stderr
    outer = json.loads(result.stdout)
    return {"status": outer["status"], **json.loads(outer["body"])}


async def test_a_307_to_a_loopback_ip_is_refused_and_the_service_receives_nothing() -> None:
    async with network() as net:
        target = f"http://127.0.0.1:{net.internal.port}/admin"
        result = await net.run({"method": "POST", "url": redirect(target), "body": "rm -rf"})
        assert result.exit_code == 1 and "egress denied" in result.stderr and "127.0.0.1" in result.stderr
        assert net.internal.seen == [] and len(net.api.seen) == 1


@pytest.mark.parametrize(
    "target",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/",
        "http://[64:ff9b::a9fe:a9fe]/",  # NAT64
        "http://[2002:a9fe:a9fe::1]/",  # 6to4
        "http://[::a9fe:a9fe]/",  # IPv4-compatible
        "http://[::ffff:0:a9fe:a9fe]/",  # SIIT
        "http://192.0.0.192/",
        "http://internal.example.test/",  # a granted name that resolves to 10.0.0.1
    ],
)
async def test_redirects_to_refused_addresses_are_refused_before_connecting(target: str) -> None:
    anywhere = Grants(egress=(*GRANTED, "0.0.0.0/0", "::/0"))  # "any address" unlocks no special range
    async with network() as net:
        result = await net.run({"url": redirect(target)}, anywhere)
        assert result.exit_code == 1 and "refused address" in result.stderr, result.stderr
        assert net.dials == [(PUBLIC["api.example.test"], 80)] and net.internal.seen == []


async def test_a_redirect_to_an_ungranted_host_is_refused() -> None:
    async with network() as net:
        grants = Grants(egress=("api.example.test",))
        result = await net.run({"url": redirect("http://other.example.test/")}, grants)
        assert result.exit_code == 1 and "not granted" in result.stderr
        assert "other.example.test" not in net.lookups and net.other.seen == []


async def test_the_hop_limit_is_a_clear_tool_error() -> None:
    async with network() as net:
        result = await net.run({"url": "http://api.example.test/loop"})
        assert result.exit_code == 1
        assert f"more than {MAX_REDIRECTS} redirects" in result.stderr
        assert len(net.api.seen) == MAX_REDIRECTS + 1


@pytest.mark.parametrize("status", [301, 302, 303])
async def test_a_post_redirected_by_301_302_303_becomes_a_get_without_body(status: int) -> None:
    async with network() as net:
        args = {"method": "POST", "url": redirect("/echo", status), "body": "payload",
                "headers": {"Content-Type": "text/plain"}}
        echo = answer(await net.run(args))
        assert echo["method"] == "GET" and echo["body"] == ""
        assert "Content-Type" not in echo["headers"] and net.api.seen[0].body == "payload"


async def test_a_head_redirected_by_303_stays_a_head() -> None:
    async with network() as net:
        result = await net.run({"method": "HEAD", "url": redirect("/echo", 303)})
        assert result.exit_code == 0 and [s.method for s in net.api.seen] == ["HEAD", "HEAD"]


@pytest.mark.parametrize("status", [307, 308])
async def test_307_and_308_keep_the_method_and_the_body(status: int) -> None:
    async with network() as net:
        echo = answer(await net.run({"method": "POST", "url": redirect("/echo", status), "body": "payload"}))
        assert echo["method"] == "POST" and echo["body"] == "payload"


async def test_credentials_are_not_forwarded_to_another_host() -> None:
    async with network() as net:
        headers = {"Authorization": "Bearer model-token", "Cookie": "s=1", "X-Trace": "t"}
        echo = answer(await net.run({"url": redirect("http://other.example.test/echo", 302), "headers": headers}))
        assert "Authorization" not in echo["headers"] and "Cookie" not in echo["headers"]
        assert echo["headers"]["X-Trace"] == "t" and net.api.seen[0].headers["Authorization"] == "Bearer model-token"
        same = answer(await net.run({"url": redirect("/echo", 302), "headers": headers}))
        assert same["headers"]["Authorization"] == "Bearer model-token"


async def test_dns_answers_are_pinned_and_the_host_header_keeps_the_name() -> None:
    async with network() as net:
        echo = answer(await net.run({"url": "http://rebind.example.test/echo"}))
        assert net.lookups == ["rebind.example.test"] and net.dials == [(PUBLIC["rebind.example.test"], 80)]
        assert echo["headers"]["Host"] == "rebind.example.test" and net.internal.seen == []
        # A later hop looks the name up again, and that answer is checked like any other.
        result = await net.run({"url": redirect("http://rebind.example.test/echo")})
        assert result.exit_code == 1 and "127.0.0.1" in result.stderr and net.internal.seen == []


async def test_the_model_cannot_set_the_host_header() -> None:
    async with network() as net:
        echo = answer(await net.run({"url": "http://api.example.test/echo", "headers": {"Host": "metadata.internal"}}))
        assert echo["headers"]["Host"] == "api.example.test"


TOKEN = "tok-8f3a1c9e5b7d2f40"


def bearer(hosts: tuple[str, ...]) -> BrokeredSecret:
    return BrokeredSecret(TOKEN, hosts, header="Authorization", format="Bearer {value}")


async def test_the_broker_calls_a_bearer_service_and_the_token_never_reaches_the_model() -> None:
    seen: list[str] = []

    async def whoami(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization", ""))
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.Response(status=401, text="missing token")
        return web.Response(text=f"hello; you sent {request.headers['Authorization']}")

    app = web.Application()
    app.router.add_get("/whoami", whoami)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    try:
        grants = Grants(egress=("127.0.0.1/32",), brokered={"SVC_TOKEN": bearer(("127.0.0.1/32",))})
        job = Job(id="b1", tool="http_request", runtime="http", grants=grants,
                  stdin=json.dumps({"url": f"http://127.0.0.1:{port}/whoami", "headers": {"Authorization": "x"}}))
        result = await http_request(job)
    finally:
        await runner.cleanup()
    assert result.exit_code == 0 and json.loads(result.stdout)["status"] == 200
    assert seen == [f"Bearer {TOKEN}"]
    assert TOKEN not in result.stdout + result.stderr and "[REDACTED:SVC_TOKEN]" in result.stdout


async def test_a_brokered_secret_is_not_injected_on_a_hop_to_a_host_not_granted_for_it() -> None:
    async with network() as net:
        grants = Grants(egress=GRANTED, brokered={"SVC_TOKEN": bearer(("api.example.test",))})
        echo = answer(await net.run({"url": redirect("http://other.example.test/echo")}, grants))
        assert net.api.seen[0].headers["Authorization"] == f"Bearer {TOKEN}"
        assert "Authorization" not in echo["headers"] and TOKEN not in json.dumps(echo)


async def test_a_query_secret_is_injected_for_its_host_and_a_hop_that_reflects_it_elsewhere_is_refused() -> None:
    async with network() as net:
        key = BrokeredSecret("key-0123456789abcdef", ("api.example.test",), query="api_key")
        grants = Grants(egress=GRANTED, brokered={"API_KEY": key})
        echo = answer(await net.run({"url": "http://api.example.test/echo?api_key=mine&q=1"}, grants))
        assert net.api.seen[0].query == {"api_key": "key-0123456789abcdef", "q": "1"}
        assert echo["query"]["api_key"] == "[REDACTED:API_KEY]"
        reflected = redirect("http://other.example.test/echo?k=key-0123456789abcdef")
        result = await net.run({"url": reflected}, grants)
        assert result.exit_code == 1 and "would carry secret API_KEY" in result.stderr
        assert net.other.seen == [] and "key-0123456789abcdef" not in result.stderr
