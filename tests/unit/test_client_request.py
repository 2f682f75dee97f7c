"""`ais.client`'s generic `request()` (admin calls the CLI makes): JSON bodies, a named node's URL,
errors mapped like every other call, 503 retried only where the call is idempotent."""

from __future__ import annotations

import asyncio
import json

import pytest

from ais.client import AsyncClient, RetryPolicy, errors
from ais.client.transport import Request, Response
from tests.unit.test_client_core import PROXY, FakeTransport, error, ok

pytestmark = pytest.mark.timeout(20)


async def _nosleep(s: float) -> None:
    pass


def test_request_sends_json_to_the_proxy_or_a_named_node_and_maps_errors() -> None:
    def handle(req: Request, body: bytes) -> Response:
        if req.url.endswith("/v1/cluster"):
            assert json.loads(body) == {"action": "set-config", "value": {"a.b": 1}}
            assert req.headers["Content-Type"] == "application/json"
            return ok(b'{"done": true}', {"X-Thing": "v"})
        if req.url.startswith("http://t1:1/"):
            return ok(b"plain text\n")
        return error(404, "etl job nope does not exist")

    t = FakeTransport(handle)

    async def go() -> None:
        c = AsyncClient(PROXY, transport=t, retry=RetryPolicy(sleep=_nosleep))
        a = await c.request("PUT", "/v1/cluster", body={"action": "set-config", "value": {"a.b": 1}})
        assert (a.status, a.json(), a.headers["x-thing"]) == (200, {"done": True}, "v")
        b = await c.request("GET", "/v1/daemon", params=[("what", "node_status")], node_url="http://t1:1/")
        assert b.text == "plain text"
        with pytest.raises(errors.EtlNotFound):
            await c.request("GET", "/v1/etl/nope")
        plain = await c.request("GET", "/v1/daemon", node_url="http://t1:1")
        with pytest.raises(errors.DecodeError):
            plain.json()

    asyncio.run(go())
    assert [(m, u.split("?")[0]) for m, u, _ in t.sent] == [
        ("PUT", PROXY + "/v1/cluster"), ("GET", "http://t1:1/v1/daemon"), ("GET", PROXY + "/v1/etl/nope"),
        ("GET", "http://t1:1/v1/daemon")]
    assert t.sent[1][1].endswith("?what=node_status")


def test_request_retries_503_only_when_idempotent() -> None:
    t = FakeTransport(lambda req, body: error(503, "busy"))

    async def go() -> None:
        c = AsyncClient(PROXY, transport=t, retry=RetryPolicy(max_attempts=2, sleep=_nosleep))
        with pytest.raises(errors.Throttled):
            await c.request("POST", "/v1/buckets/b", body={"action": "x"})
        assert len(t.sent) == 1
        with pytest.raises(errors.Throttled):
            await c.request("GET", "/v1/cluster", idempotent=True)
        assert len(t.sent) == 3

    asyncio.run(go())
