"""ais.client's request pipeline over a fake transport: routing decisions (direct to the HRW owner,
proxy fallbacks, map refresh), redirects, retries and body replay. No network, no sleeping."""

from __future__ import annotations

import asyncio
import json
from typing import Any, AsyncIterator, Callable
from urllib.parse import urlsplit

import pytest

from ais import hrw
from ais.client import AsyncClient, RetryPolicy, Router, errors
from ais.client.transport import Request, Response
from ais.cmap import ClusterMap, Node
from ais.names import Bucket

pytestmark = pytest.mark.timeout(20)

PROXY = "http://proxy:8080"


def smap(targets: dict[str, str], version: int = 3) -> ClusterMap:
    p = Node("P1", "proxy", PROXY, "http://proxy:9080")
    return ClusterMap(version=version, uuid="u", primary_id="P1", proxies={"P1": p},
                      targets={tid: Node(tid, "target", url, url.replace(":1", ":2")) for tid, url in targets.items()})


TARGETS = {"T1": "http://t1:1", "T2": "http://t2:1", "T3": "http://t3:1"}


def owner_url(m: ClusterMap, bucket: str, obj: str) -> str:
    uname = Bucket(bucket).object_uname(obj)
    node = hrw.choose(uname, ((t.id_digest, t) for t in m.targets.values()))
    assert node is not None
    return node.public_url


class FakeTransport:
    """Answers requests with `handler(request, body)`; records (method, url, body) of each."""

    def __init__(self, handler: Callable[[Request, bytes], Response]) -> None:
        self.handler = handler
        self.sent: list[tuple[str, str, bytes]] = []

    async def send(self, request: Request) -> Response:
        body = b""
        if isinstance(request.body, bytes):
            body = request.body
        elif request.body is not None:
            body = b"".join([c async for c in request.body])
        url = request.url
        if request.params:
            url += "?" + "&".join(f"{k}={v}" for k, v in request.params)
        self.sent.append((request.method, url, body))
        return self.handler(request, body)

    async def aclose(self) -> None:
        pass

    def hosts(self) -> list[str]:
        return [urlsplit(u).netloc for _, u, _ in self.sent]


def ok(content: bytes = b"", headers: dict[str, str] | None = None, status: int = 200) -> Response:
    return Response(status, headers or {}, content=content)


def error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(status, headers or {}, content=json.dumps({"message": message, "status": status}).encode())


def cluster_handler(m: ClusterMap, objects: dict[str, bytes]) -> Callable[[Request, bytes], Response]:
    """A proxy that serves the map and redirects; targets that own what HRW says."""
    def handle(req: Request, body: bytes) -> Response:
        path = urlsplit(req.url).path
        host = f"http://{urlsplit(req.url).netloc}"
        if path == "/v1/daemon":
            return ok(json.dumps(m.to_wire()).encode())
        _, _, _, bucket, obj = path.split("/", 4)
        own = owner_url(m, bucket, obj)
        if host == PROXY:
            return Response(301 if req.method == "GET" else 307, {"Location": f"{own}{path}?pid=P1"})
        if host != own:
            return Response(301, {"Location": f"{own}{path}?trd=x"})
        if req.method == "PUT":
            objects[obj] = body
            return ok()
        if obj not in objects:
            return error(404, f"t[x]: ais://{bucket}/{obj} does not exist")
        return ok(objects[obj], {"Content-Length": str(len(objects[obj]))})
    return handle


def client(transport: FakeTransport, **kw: Any) -> AsyncClient:
    sleeps: list[float] = kw.pop("sleeps", [])

    async def sleep(s: float) -> None:
        sleeps.append(s)
    retry = RetryPolicy(max_attempts=kw.pop("max_attempts", 4), sleep=sleep)
    return AsyncClient(PROXY, transport=transport, retry=retry, **kw)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# --- routing --------------------------------------------------------------------------------

def test_object_requests_go_straight_to_the_hrw_owner() -> None:
    m = smap(TARGETS)
    store = {f"o{i}": f"v{i}".encode() for i in range(30)}
    t = FakeTransport(cluster_handler(m, store))
    c = client(t)

    async def go() -> None:
        for i in range(30):
            assert await c.get_object("b", f"o{i}") == f"v{i}".encode()
    run(go())
    # one map fetch at the proxy, then every GET at its owner, none redirected
    assert t.sent[0][1] == f"{PROXY}/v1/daemon?what=smap"
    gets = t.sent[1:]
    assert len(gets) == 30
    for i, (_, url, _) in enumerate(gets):
        assert url.startswith(owner_url(m, "b", f"o{i}") + f"/v1/objects/b/o{i}?provider=ais")
    assert len({urlsplit(u).netloc for _, u, _ in gets}) == 3   # spread over all targets
    assert c.stats.direct == 30 and c.stats.redirects == 0


def test_without_direct_routing_requests_go_through_the_proxy() -> None:
    m = smap(TARGETS)
    t = FakeTransport(cluster_handler(m, {"x": b"1"}))
    c = client(t, direct=False)
    assert run(c.get_object("b", "x")) == b"1"
    assert [h for h in t.hosts()] == ["proxy:8080", urlsplit(owner_url(m, "b", "x")).netloc]
    assert c.stats.map_fetches == 0 and c.stats.redirects == 1


def test_a_target_that_is_not_the_owner_redirects_and_the_map_is_refreshed() -> None:
    old = smap({"T1": "http://t1:1", "T2": "http://t2:1"}, version=3)
    new = smap(TARGETS, version=4)
    # find an object whose owner changes when T3 joins
    name = next(f"o{i}" for i in range(100) if owner_url(old, "b", f"o{i}") != owner_url(new, "b", f"o{i}"))
    store = {name: b"moved"}
    t = FakeTransport(cluster_handler(new, store))
    c = client(t)
    c.router.min_refresh_s = 0
    c.router.install(old)

    async def go() -> None:
        assert await c.get_object("b", name) == b"moved"
        assert c.stats.target_redirects == 1 and c.router.needs_refresh()
        assert await c.get_object("b", name) == b"moved"     # refreshes first, then goes straight there
    run(go())
    assert c.router.smap is not None and c.router.smap.version == 4
    hosts = t.hosts()
    own = urlsplit(owner_url(new, "b", name)).netloc
    assert hosts == [urlsplit(owner_url(old, "b", name)).netloc, own, "proxy:8080", own]
    assert c.stats.map_changes == 1


def test_an_unreachable_owner_sends_the_retry_to_the_proxy_and_refreshes_the_map() -> None:
    m = smap(TARGETS)
    dead = urlsplit(owner_url(m, "b", "x")).netloc
    inner = cluster_handler(m, {"x": b"ok"})
    down = True

    def handle(req: Request, body: bytes) -> Response:
        if down and urlsplit(req.url).netloc == dead and "/v1/objects/" in req.url:
            raise errors.ConnectError("refused", url=req.url)
        if down and urlsplit(req.url).netloc == "proxy:8080" and "/v1/objects/" in req.url:
            return error(503, "the owner is down")     # the proxy cannot serve it either, for now
        return inner(req, body)
    t = FakeTransport(handle)
    sleeps: list[float] = []
    c = client(t, sleeps=sleeps, max_attempts=3)
    c.router.min_refresh_s = 0
    now = [1000.0]
    c.router.clock = lambda: now[0]

    async def go() -> None:
        nonlocal down
        with pytest.raises(errors.Throttled):
            await c.get_object("b", "x")
        # GET to the dead owner, map refresh, then the proxy (503), then the proxy again (503)
        assert t.hosts() == ["proxy:8080", dead, "proxy:8080", "proxy:8080", "proxy:8080"]
        assert len(sleeps) == 2 and c.stats.transport_errors == 1
        down = False
        n = len(t.sent)
        assert await c.get_object("b", "x") == b"ok"     # still suspected: through the proxy
        assert t.hosts()[n:] == ["proxy:8080", dead] and "/v1/objects/" in t.sent[n][1]
        now[0] += c.router.suspect_s     # the suspicion lapses: straight to the owner again
        n = len(t.sent)
        assert await c.get_object("b", "x") == b"ok"
        assert t.hosts()[n:] == [dead]
    run(go())


def test_bucket_unknown_at_a_target_falls_back_to_the_proxy_once() -> None:
    m = smap(TARGETS)
    inner = cluster_handler(m, {"x": b"ok"})

    def handle(req: Request, body: bytes) -> Response:
        if "pid=" not in req.url and urlsplit(req.url).netloc.startswith("t"):
            return error(404, 'bucket "ais://b" does not exist')   # metadata not there yet
        return inner(req, body)
    t = FakeTransport(handle)
    c = client(t)
    assert run(c.get_object("b", "x")) == b"ok"
    own = urlsplit(owner_url(m, "b", "x")).netloc
    assert t.hosts() == ["proxy:8080", own, "proxy:8080", own]


def test_object_not_found_rechecks_a_moved_map_once() -> None:
    old = smap({"T1": "http://t1:1", "T2": "http://t2:1"}, version=3)
    new = smap(TARGETS, version=5)
    name = next(f"o{i}" for i in range(100) if owner_url(old, "b", f"o{i}") != owner_url(new, "b", f"o{i}"))
    store: dict[str, bytes] = {}
    inner = cluster_handler(new, store)

    def handle(req: Request, body: bytes) -> Response:
        if urlsplit(req.url).netloc == urlsplit(owner_url(old, "b", name)).netloc and "/v1/objects/" in req.url:
            return error(404, f"t[x]: ais://b/{name} does not exist")   # old owner, map not updated there
        return inner(req, body)
    store[name] = b"here"
    t = FakeTransport(handle)
    c = client(t)
    c.router.min_refresh_s = 0
    c.router.install(old)
    assert run(c.get_object("b", name)) == b"here"
    assert c.router.smap is not None and c.router.smap.version == 5
    # a real miss is answered once the map is current
    with pytest.raises(errors.ObjectNotFound):
        run(c.get_object("b", "missing-object"))


def test_router_refresh_schedule() -> None:
    now = [100.0]
    r = Router(PROXY, ttl_s=60, min_refresh_s=1, clock=lambda: now[0])
    assert r.needs_refresh()                      # no map yet
    r.install(smap(TARGETS))
    assert not r.needs_refresh()
    r.mark_stale()
    assert not r.needs_refresh()                  # not twice within min_refresh_s
    now[0] += 1
    assert r.needs_refresh()
    r.install(smap(TARGETS))
    now[0] += 59.5
    assert not r.needs_refresh()
    now[0] += 1
    assert r.needs_refresh()                      # ttl
    r.fetch_failed()
    assert not r.needs_refresh()
    assert not Router(PROXY, direct=False).needs_refresh()


def test_router_prefers_other_proxies_after_a_connect_error() -> None:
    r = Router(PROXY)
    m = smap(TARGETS)
    p2 = Node("P2", "proxy", "http://proxy2:8080", "http://proxy2:9080")
    m = ClusterMap(version=4, uuid="u", primary_id="P1", proxies={"P1": m.proxies["P1"], "P2": p2},
                   targets=m.targets)
    r.install(m)
    assert r.proxy_url() == PROXY
    r.proxy_unreachable()
    assert r.proxy_url() == "http://proxy2:8080"
    assert r.route_object(Bucket("b"), "x").direct


def test_maintenance_targets_are_skipped() -> None:
    m = smap(TARGETS)
    r = Router(PROXY)
    r.install(m)
    first = r.route_object(Bucket("b"), "x")
    flagged = {tid: (Node(n.id, n.role, n.public_url, n.intra_url, flags=4) if tid == first.target_id else n)
               for tid, n in m.targets.items()}
    r.install(ClusterMap(version=9, uuid="u", primary_id="P1", proxies=m.proxies, targets=flagged))
    second = r.route_object(Bucket("b"), "x")
    assert second.direct and second.target_id != first.target_id


# --- retries --------------------------------------------------------------------------------

def test_throttled_gets_are_retried_honouring_retry_after() -> None:
    answers = [error(429, "slow", {"Retry-After": "2"}), error(503, "busy", {"Retry-After": "1"}), ok(b"data")]
    t = FakeTransport(lambda req, body: answers.pop(0))
    sleeps: list[float] = []
    c = client(t, direct=False, sleeps=sleeps)
    assert run(c.get_object("b", "x")) == b"data"
    assert len(t.sent) == 3 and c.stats.throttled == 2
    assert 2.0 <= sleeps[0] < 2.2 and 1.0 <= sleeps[1] < 1.2


def test_retries_run_out_and_raise_throttled() -> None:
    t = FakeTransport(lambda req, body: error(429, "slow", {"Retry-After": "1"}))
    c = client(t, direct=False, max_attempts=3)
    with pytest.raises(errors.Throttled) as ei:
        run(c.get_object("b", "x"))
    assert ei.value.retry_after_s == 1 and len(t.sent) == 3


def test_non_idempotent_calls_are_sent_once() -> None:
    t = FakeTransport(lambda req, body: error(503, "busy"))
    c = client(t)
    with pytest.raises(errors.Throttled):
        run(c.create_bucket("b"))
    assert len(t.sent) == 1

    def refuse(req: Request, body: bytes) -> Response:
        raise errors.ConnectError("refused", url=req.url)
    t2 = FakeTransport(refuse)
    c2 = client(t2)
    with pytest.raises(errors.ConnectError):
        run(c2.copy_bucket("a", "b"))
    assert len(t2.sent) == 1
    with pytest.raises(errors.ConnectError):
        run(c2.bucket_props("a"))          # idempotent: retried until attempts run out
    assert len(t2.sent) == 1 + 4


def test_connection_errors_on_gets_are_retried() -> None:
    calls = [0]

    def flaky(req: Request, body: bytes) -> Response:
        calls[0] += 1
        if calls[0] <= 2:
            raise errors.ConnectError("reset", url=req.url)
        return ok(b"fine")
    t = FakeTransport(flaky)
    c = client(t, direct=False)
    assert run(c.get_object("b", "x")) == b"fine"
    assert c.stats.transport_errors == 2 and c.stats.retries == 2


async def chunks(parts: list[bytes]) -> AsyncIterator[bytes]:
    for p in parts:
        yield p


def test_a_streamed_put_is_replayed_after_a_redirect() -> None:
    m = smap(TARGETS)
    store: dict[str, bytes] = {}
    t = FakeTransport(cluster_handler(m, store))
    c = client(t, direct=False)
    parts = [b"a" * 1000, b"b" * 1000, b"c" * 10]
    run(c.put_object("b", "streamed", chunks(parts)))
    assert store["streamed"] == b"".join(parts)
    # the proxy got the body once (it answered 307 after reading it here), the owner got it all
    assert [len(b) for _, _, b in t.sent] == [2010, 2010]


def test_a_streamed_put_larger_than_what_is_kept_cannot_be_replayed() -> None:
    m = smap(TARGETS)
    t = FakeTransport(cluster_handler(m, {}))
    c = client(t, direct=False, stream_keep_bytes=1500)
    with pytest.raises(errors.StreamConsumed):
        run(c.put_object("b", "streamed", chunks([b"a" * 1000, b"b" * 1000])))


def test_list_objects_pages_until_the_token_is_empty() -> None:
    import msgpack
    pages = [
        {"UUID": "u1", "ContinuationToken": "b", "Flags": 0, "Entries": [{"n": "a", "s": 1}, {"n": "b", "s": 2}]},
        {"UUID": "u1", "ContinuationToken": "", "Flags": 0, "Entries": [{"n": "c", "s": 3, "f": 64}]},
    ]
    t = FakeTransport(lambda req, body: ok(msgpack.packb(pages.pop(0)), {"Content-Type": "application/msgpack"}))
    c = client(t)

    async def go() -> list[Any]:
        return [e async for e in c.list_objects("b", page_size=2)]
    entries = run(go())
    assert [(e.name, e.size) for e in entries] == [("a", 1), ("b", 2), ("c", 3)] and entries[2].is_cached
    second = json.loads(t.sent[1][2])
    assert second["value"]["continuation_token"] == "b" and second["value"]["uuid"] == "u1"
    assert second["value"]["flags"] == "0" and t.sent[1][0] == "GET"


def test_reads_carry_etl_name_archpath_and_range() -> None:
    t = FakeTransport(lambda req, body: ok(b"x"))
    c = client(t, direct=False)
    run(c.get_object("b", "shard.tar", etl_name="my-etl", archpath="a/b.jpg"))
    assert "etl_name=my-etl" in t.sent[-1][1] and "archpath=a/b.jpg" in t.sent[-1][1]
    seen: list[Request] = []
    t.handler = lambda req, body: (seen.append(req), ok(b"x"))[1]
    run(c.get_object("b", "o", offset=10, length=5))
    assert seen[-1].headers["Range"] == "bytes=10-14"


def test_etl_calls_follow_the_wire() -> None:
    t = FakeTransport(lambda req, body: ok(b"job-1" if req.method == "PUT" else b"[]"))
    c = client(t)

    async def go() -> None:
        assert await c.etl_init("my-etl", "img:1", command=["python", "s.py"], env={"K": "V"}) == "job-1"
        assert await c.etl_list() == []
        await c.etl_stop("my-etl")
        await c.etl_delete("my-etl")
    run(go())
    method, url, body = t.sent[0]
    msg = json.loads(body)
    assert (method, url) == ("PUT", f"{PROXY}/v1/etl")
    assert msg["name"] == "my-etl" and msg["communication"] == "hpush://"
    assert msg["runtime"] == {"image": "img:1", "command": ["python", "s.py"], "env": [{"name": "K", "value": "V"}]}
    assert [(m, u) for m, u, _ in t.sent[1:]] == [("GET", f"{PROXY}/v1/etl"), ("POST", f"{PROXY}/v1/etl/my-etl/stop"),
                                                  ("DELETE", f"{PROXY}/v1/etl/my-etl")]
