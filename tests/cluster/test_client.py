"""`ais.client` against a real cluster: objects, buckets, listing and batch-get routed straight to
the owning targets; the typed errors; retries through a proxy's 429s and a target's 503s;
a stale cluster map corrected by a target's redirect; a target killed and restarted under a
client's feet; use from threads and from a forked child."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import random
import threading
from typing import Any, Callable, Iterator

import pytest
import requests
from aiohttp import ClientSession, web

from ais.cli import localcluster
from ais.client import BatchItem, Client, RetryPolicy, errors
from ais.cmap import ClusterMap
from tests.cluster.conftest import Cluster


@pytest.fixture
def ours(cluster: Cluster) -> Iterator[Client]:
    c = Client(cluster.endpoint)
    yield c
    c.close()


@pytest.fixture
def bname(ours: Client, request: pytest.FixtureRequest) -> Iterator[str]:
    name = f"cl-{request.node.name[5:30].replace('_', '-').lower()}-{os.urandom(3).hex()}"
    ours.create_bucket(name)
    yield name
    ours.destroy_bucket(name, missing_ok=True)


def test_objects_buckets_and_listing_go_straight_to_the_owners(ours: Client, bname: str, tmp_path: Any) -> None:
    rng = random.Random(1)
    data = {f"d/{i:03d}": rng.randbytes(rng.randrange(0, 5000)) for i in range(60)}
    for name, payload in data.items():
        props = ours.put_object(bname, name, payload)
        assert props.size == len(payload)
    # a streamed body (an iterator of chunks) and a file
    ours.put_object(bname, "streamed", iter([b"a" * 70000, b"b" * 3]))
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(3 << 20))
    ours.put_file(bname, "big", str(big))

    for name, payload in data.items():
        assert ours.get_object(bname, name) == payload
    assert ours.get_object(bname, "streamed") == b"a" * 70000 + b"bbb"
    assert ours.get_object(bname, "big", offset=(1 << 20) + 5, length=11) == big.read_bytes()[(1 << 20) + 5:][:11]
    with ours.open_object(bname, "big") as r:
        chunks = list(r.iter_chunks())
    assert b"".join(chunks) == big.read_bytes() and len(chunks) > 1
    head = ours.head_object(bname, "d/007")
    assert head.size == len(data["d/007"]) and head.checksum_type == "xxhash" and head.checksum_value
    assert ours.object_exists(bname, "d/000")

    # every object request went to its owner: nothing was redirected by a target
    st = ours.stats
    assert st.direct >= 2 * len(data) and st.target_redirects == 0 and st.map_fetches == 1
    # (a miss may refetch the map once, 0.5 s after the last fetch: so it comes after the count)
    assert not ours.object_exists(bname, "nope")

    names = [e.name for e in ours.list_objects(bname, prefix="d/", page_size=7)]
    assert names == sorted(data)
    entries = ours.list_all(bname)
    assert {e.name: e.size for e in entries}["big"] == 3 << 20

    ours.delete_object(bname, "d/000")
    with pytest.raises(errors.ObjectNotFound):
        ours.get_object(bname, "d/000")
    ours.delete_object(bname, "d/000", missing_ok=True)
    with pytest.raises(errors.BucketExists):
        ours.create_bucket(bname)
    assert any(b.name == bname for b in ours.list_buckets())
    assert ours.bucket_props(bname)["provider"] == "ais"


def test_errors_are_typed(ours: Client, bname: str) -> None:
    with pytest.raises(errors.BucketNotFound):
        ours.get_object("no-such-bucket-x", "o")
    with pytest.raises(errors.BucketNotFound):
        ours.list_all("no-such-bucket-x")
    with pytest.raises(errors.ObjectNotFound) as ei:
        ours.get_object(bname, "missing")
    assert f"ais://{bname}/missing" in ei.value.message and ei.value.status == 404
    ours.put_object(bname, "small", b"0123")
    with pytest.raises(errors.RangeNotSatisfiable):
        ours.get_object(bname, "small", offset=100, length=5)
    with pytest.raises(errors.InvalidName):
        ours.get_object(bname, "")
    with pytest.raises(errors.ConnectError):
        Client("http://127.0.0.1:9", retry=RetryPolicy(max_attempts=2, backoff_s=0.01)).list_buckets()


def test_through_the_proxy_the_same(cluster: Cluster, ours: Client, bname: str) -> None:
    ours.put_object(bname, "x", b"via proxy")
    with Client(cluster.endpoint, direct=False) as c:
        assert c.get_object(bname, "x") == b"via proxy"
        c.put_object(bname, "y", b"put via proxy")
        assert c.stats.direct == 0 and c.stats.redirects == 2 and c.stats.map_fetches == 0
    assert ours.get_object(bname, "y") == b"put via proxy"


def test_batch_get_in_request_order_from_every_target(ours: Client, bname: str) -> None:
    rng = random.Random(2)
    data = {f"b{i:03d}": rng.randbytes(100 + i) for i in range(90)}
    for n, d in data.items():
        ours.put_object(bname, n, d)
    order = list(data)
    rng.shuffle(order)
    before = ours.stats.direct
    got = ours.batch_get(order, bucket=bname)
    assert [e.name for e in got] == order and all(e.data == data[e.name] for e in got)
    assert ours.stats.direct == before + 1         # sent straight to the target owning most entries
    # ranges, a missing entry with continue_on_error, streamed entry by entry
    items = [BatchItem("b001", offset=10, length=20), BatchItem("absent"), BatchItem("b002")]
    out = list(ours.batch_iter(items, bucket=bname, continue_on_error=True))
    assert out[0].data == data["b001"][10:30] and out[1].error and not out[1].data and out[2].data == data["b002"]
    with pytest.raises(errors.NotFound):
        ours.batch_get(["absent"], bucket=bname)
    # by owner: one request straight to each owner of entries, merged back in request order
    before = ours.stats.direct
    split = ours.batch_get(order, bucket=bname, by_owner=True)
    assert [(e.name, e.data) for e in split] == [(e.name, e.data) for e in got]
    assert ours.stats.direct == before + 3
    items = [BatchItem("absent"), *[BatchItem(n) for n in order[:20]], BatchItem("b001", offset=10, length=20)]
    out = ours.batch_get(items, bucket=bname, continue_on_error=True, by_owner=True)
    assert [e.name for e in out] == [it.name for it in items] and out[0].error and not out[0].data
    assert [e.data for e in out[1:]] == [data[n] for n in order[:20]] + [data["b001"][10:30]]
    with pytest.raises(errors.NotFound):
        ours.batch_get(order[:30] + ["absent"], bucket=bname, by_owner=True)
    # contents only, with and without the split
    for by_owner in (False, True):
        assert ours.batch_get_bytes(order, bucket=bname, by_owner=by_owner) == [data[n] for n in order]
        with pytest.raises(errors.NotFound):
            ours.batch_get_bytes(["absent", *order[:5]], bucket=bname, by_owner=by_owner)


def test_proxy_429s_are_retried_honouring_retry_after(cluster: Cluster, ours: Client, bname: str) -> None:
    ours.put_object(bname, "o", b"limited")
    ours.set_bucket_props(bname, {"rate_limit": {"frontend": {"enabled": True, "max_tokens": 4, "interval": "1s",
                                                              "burst_size": 4}}})
    with Client(cluster.endpoint, direct=False) as c:
        for _ in range(12):
            assert c.get_object(bname, "o") == b"limited"
        assert c.stats.throttled > 0 and c.stats.retries >= c.stats.throttled


class FlakyFront:
    """An HTTP front for one target: answers 503 (Retry-After) to the first `fail` object
    requests, then relays them to the target."""

    def __init__(self, upstream: str, fail: int) -> None:
        self.upstream, self.fail = upstream, fail
        self.seen: list[int] = []
        self.url = ""
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)

    async def _serve(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        async with ClientSession(auto_decompress=False) as session:
            async def relay(request: web.Request) -> web.StreamResponse:
                if len(self.seen) < self.fail:
                    self.seen.append(503)
                    return web.Response(status=503, text="busy", headers={"Retry-After": "0.2"})
                self.seen.append(200)
                async with session.request(request.method, self.upstream + request.raw_path,
                                           data=await request.read(), allow_redirects=False) as r:
                    return web.Response(status=r.status, body=await r.read(),
                                        headers={k: v for k, v in r.headers.items() if k.lower().startswith("ais-")})
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", relay)
            runner = web.AppRunner(app)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self.url = f"http://127.0.0.1:{port}"
            self._ready.set()
            await self._stop.wait()
            await runner.cleanup()

    def __enter__(self) -> "FlakyFront":
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


def test_a_target_answering_503_is_retried(cluster: Cluster, ours: Client, bname: str) -> None:
    ours.put_object(bname, "o", b"eventually")
    smap = ours.cluster_map(refresh=True)
    owner = smap.owner(f"ais/@#/{bname}/o") or pytest.fail("no owner")
    with FlakyFront(owner.public_url, fail=3) as front:
        # the client's map sends this target's requests to the front
        moved = dict(smap.targets)
        moved[owner.id] = dataclasses.replace(owner, public_url=front.url)
        ours.router.install(ClusterMap(smap.version, smap.uuid, smap.primary_id, smap.proxies, moved))
        before = ours.stats.throttled
        assert ours.get_object(bname, "o") == b"eventually"
        assert front.seen == [503, 503, 503, 200]
        assert ours.stats.throttled - before == 3
    # a 503 that never ends runs the retries out and raises Throttled
    with FlakyFront(owner.public_url, fail=100) as front:
        moved[owner.id] = dataclasses.replace(owner, public_url=front.url)
        c = Client(cluster.endpoint, retry=RetryPolicy(max_attempts=3))
        c.router.install(ClusterMap(smap.version, smap.uuid, smap.primary_id, smap.proxies, moved))
        with pytest.raises(errors.Throttled) as ei:
            c.get_object(bname, "o")
        assert ei.value.retry_after_s == 0.2 and len(front.seen) == 3
        c.close()


def test_a_stale_map_is_corrected_by_a_targets_redirect(cluster: Cluster, ours: Client, bname: str) -> None:
    for i in range(20):
        ours.put_object(bname, f"o{i}", b"%d" % i)
    real = ours.cluster_map(refresh=True)
    ids = sorted(real.targets)
    # a map in which the targets' addresses are rotated: every request lands on a non-owner
    urls = [real.targets[i].public_url for i in ids]
    rotated = {tid: dataclasses.replace(real.targets[tid], public_url=urls[(k + 1) % len(ids)])
               for k, tid in enumerate(ids)}
    ours.router.min_refresh_s = 0
    ours.router.install(ClusterMap(real.version, real.uuid, real.primary_id, real.proxies, rotated))
    before = dataclasses.replace(ours.stats)
    assert ours.get_object(bname, "o0") == b"0"
    assert ours.stats.target_redirects == before.target_redirects + 1
    for i in range(20):
        assert ours.get_object(bname, f"o{i}") == b"%d" % i
    assert ours.router.smap is not None and ours.router.smap.targets == real.targets
    assert ours.stats.target_redirects == before.target_redirects + 1     # once refreshed, straight there
    assert ours.stats.map_fetches == before.map_fetches + 1


def test_a_restarted_target_is_waited_for_and_the_map_refetched(make_cluster: Callable[..., Cluster]) -> None:
    c = make_cluster(targets=3)
    client = Client(c.endpoint, retry=RetryPolicy(max_attempts=10, backoff_s=0.2, max_backoff_s=2))
    client.create_bucket("restart")
    data = {f"o{i}": os.urandom(500 + i) for i in range(30)}
    for n, d in data.items():
        client.put_object("restart", n, d)
    smap = client.cluster_map()
    victim = c.node("t1")
    vid = next(t.id for t in smap.targets.values() if t.public_url.endswith(f":{victim.public_port}"))
    owned = [n for n in data if smap.owner(f"ais/@#/restart/{n}").id == vid]  # type: ignore[union-attr]
    assert owned
    fetches = client.stats.map_fetches

    c.kill("t1")
    restarter = threading.Timer(1.0, lambda: (localcluster.start_node(c.spec, victim, c.env), c.spec.save()))
    restarter.start()
    try:
        # reads of the victim's objects fail to connect, fall back to the proxy, back off, and
        # succeed once it is back; the others never notice
        for n in owned + [n for n in data if n not in owned]:
            assert client.get_object("restart", n) == data[n]
    finally:
        restarter.join()
    localcluster.wait_ready(c.spec)
    assert client.stats.transport_errors >= 1 and client.stats.map_fetches > fetches
    for n, d in data.items():
        assert client.get_object("restart", n) == d
    current = requests.get(f"{c.endpoint}/v1/daemon?what=smap", timeout=10).json()
    assert client.cluster_map(refresh=True).version == int(current["version"])
    client.close()


def test_threads_and_a_forked_child_share_nothing_they_should_not(ours: Client, bname: str) -> None:
    data = {f"t{i}": os.urandom(2000) for i in range(40)}
    for n, d in data.items():
        ours.put_object(bname, n, d)
    bad: list[str] = []

    def reader(names: list[str]) -> None:
        for n in names:
            if ours.get_object(bname, n) != data[n]:
                bad.append(n)
    threads = [threading.Thread(target=reader, args=(list(data)[k::8],)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not bad

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:   # the child reads with the parent's client, then exits without cleanup
        ok = all(ours.get_object(bname, n) == d for n, d in data.items())
        os.write(w, b"1" if ok else b"0")
        os._exit(0)
    os.close(w)
    got = os.read(r, 1)
    os.waitpid(pid, 0)
    os.close(r)
    assert got == b"1"
    # the parent's pool is intact after the child came and went
    assert all(ours.get_object(bname, n) == d for n, d in list(data.items())[:5])
