"""The voters' side of a primary election (ais/election.py) and the cluster map's primary handling,
against a fake intra client that says which nodes answer."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ais import apc
from ais.cmap import ClusterMap, Node
from ais.config import Config
from ais.election import Voter, ask_candidate, newer_payload, parse_request, votes_needed
from ais.errors import BadMessage, ServiceUnavailable
from ais.intra import PeerError
from ais.membership import MetaStore

pytestmark = pytest.mark.timeout(10)


def node(i: str, role: str = "proxy", flags: int = 0) -> Node:
    return Node(i, role, f"http://{i}:1", f"http://{i}:2", flags)


def cmap(primary: str = "P0", proxies: tuple[Node, ...] = (), version: int = 5, uuid: str = "u") -> ClusterMap:
    ps = {p.id: p for p in (node(primary), *proxies)}
    return ClusterMap(version=version, uuid=uuid, primary_id=primary, proxies=ps, targets={"T": node("T", "target")})


class FakeHttp:
    """Answers for the nodes in `alive` (by ID); `answers`: what POSTs to a node return."""

    def __init__(self, alive: set[str], answers: dict[str, Any] | None = None) -> None:
        self.alive, self.answers = alive, answers or {}
        self.asked: list[str] = []

    def _node(self, url: str) -> str:
        return url.split("://", 1)[1].split(":", 1)[0]

    async def call(self, method: str, url: str, **kw: Any) -> tuple[int, bytes, dict[str, str]]:
        if self._node(url) not in self.alive:
            raise ServiceUnavailable(f"{url}: connection refused")
        return 200, b"", {}

    async def call_json(self, method: str, url: str, **kw: Any) -> Any:
        n = self._node(url)
        self.asked.append(n)
        if n not in self.alive:
            raise ServiceUnavailable(f"{url}: connection refused")
        answer = self.answers.get(n, {})
        if isinstance(answer, Exception):
            raise answer
        return answer


def by_digest(*ids: str) -> list[str]:
    return sorted(ids, key=lambda i: node(i).id_digest, reverse=True)


IDS = by_digest("A", "B", "C", "D")   # A..D ranked: IDS[0] is the best candidate


def vote(smap: ClusterMap, alive: set[str], candidate: str, me: str = "T", primary: str = "P0",
         uuid: str = "u") -> tuple[bool, str]:
    store = MetaStore("/nonexistent")
    store.smap = smap
    me_node = smap.get(me) or node(me, "target")
    voter = Voter(me_node, store, FakeHttp(alive), lambda: Config())  # type: ignore[arg-type]
    return asyncio.run(voter.vote(uuid, primary, smap.version, candidate, probe_s=0.1))


def test_candidates_are_electable_proxies_by_descending_digest() -> None:
    smap = cmap(proxies=(node(IDS[0], flags=apc.FLAG_MAINTENANCE), node(IDS[1]),
                         node(IDS[2], flags=apc.FLAG_NON_ELECTABLE), node(IDS[3])))
    assert [p.id for p in smap.electable_proxies()] == [IDS[1], IDS[3]]   # never the primary itself


def test_with_primary_bumps_the_version_and_needs_a_proxy() -> None:
    smap = cmap(proxies=(node("A"),))
    new = smap.with_primary("A")
    assert new.primary_id == "A" and new.version == smap.version + 1 and new.proxies == smap.proxies
    assert ClusterMap.from_wire(new.to_wire()).primary_id == "A"
    with pytest.raises(KeyError):
        smap.with_primary("T")


@pytest.mark.parametrize("electorate,needed", [(1, 1), (2, 2), (3, 2), (4, 3), (5, 3), (6, 4)])
def test_majority_is_more_than_half_of_the_electorate(electorate: int, needed: int) -> None:
    assert votes_needed(electorate) == needed


def test_vote_yes_only_when_the_primary_is_gone_and_the_candidate_ranks_first() -> None:
    smap = cmap(proxies=tuple(node(i) for i in IDS))
    everyone = {"P0", *IDS, "T"}
    assert vote(smap, everyone, IDS[0]) == (False, "the primary p[P0] answers")
    assert vote(smap, everyone - {"P0"}, IDS[0])[0] is True
    yes, why = vote(smap, everyone - {"P0"}, IDS[1])
    assert not yes and IDS[0] in why and "ranks above" in why
    assert vote(smap, everyone - {"P0", IDS[0]}, IDS[1])[0] is True   # the best one is down too


def test_vote_no_for_another_cluster_a_moved_map_or_a_bad_candidate() -> None:
    smap = cmap(proxies=tuple(node(i) for i in IDS))
    alive = {*IDS, "T"}
    assert "another cluster" in vote(smap, alive, IDS[0], uuid="other")[1]
    moved = cmap(primary=IDS[1], proxies=tuple(node(i) for i in IDS) + (node("P0"),), version=6)
    assert vote(moved, alive, IDS[0]) == (False, f"the primary is p[{IDS[1]}] in cluster map v6")
    assert vote(moved, alive, IDS[1])[0] is True      # already the primary: agreed
    assert vote(smap, alive, "T")[0] is False          # a target cannot be elected
    assert vote(smap, alive, "nobody")[0] is False
    assert vote(smap, alive, IDS[0], me="P0") == (False, "I am the primary")


def test_vote_requests_are_validated() -> None:
    assert parse_request({"uuid": "u", "primary": "P", "smap_version": 3, "versions": [1, 2]}) == ("u", "P", 3, (1, 2))
    for bad in (None, [], {"uuid": "u", "primary": "P", "smap_version": -1},
                {"uuid": "", "primary": "P", "smap_version": 1}, {"uuid": "u", "primary": "P", "smap_version": True},
                {"uuid": "u", "primary": "P", "smap_version": 1, "versions": ["1"]}):
        with pytest.raises(BadMessage):
            parse_request(bad)


def test_the_answer_carries_metadata_only_when_newer() -> None:
    store = MetaStore("/nonexistent")
    store.smap = cmap()
    mine = store.versions()
    assert newer_payload(store, mine) is None
    assert newer_payload(store, (mine[0] + 1,)) is None
    payload = newer_payload(store, (mine[0] - 1,))
    assert payload is not None and payload["smap"]["version"] == str(mine[0])


def test_a_node_that_lost_the_primary_asks_the_first_candidate_that_answers() -> None:
    smap = cmap(proxies=tuple(node(i) for i in IDS))
    store = MetaStore("/nonexistent")
    store.smap = smap
    http = FakeHttp({IDS[1], IDS[2]})
    assert asyncio.run(ask_candidate(http, node("T", "target"), store, smap, {}, 0.1)) is True  # type: ignore[arg-type]
    assert http.asked == [IDS[0], IDS[1]]        # the best one is down: the next one runs it
    # a proxy that is itself the first candidate to answer runs the election (False)
    http = FakeHttp(set())
    assert asyncio.run(ask_candidate(http, node(IDS[1]), store, smap, {}, 0.1)) is False  # type: ignore[arg-type]
    assert http.asked == [IDS[0]]
    # a candidate that refuses ends the round
    http = FakeHttp({IDS[0]}, {IDS[0]: PeerError(403, "secret")})
    assert asyncio.run(ask_candidate(http, node("T", "target"), store, smap, {}, 0.1)) is True  # type: ignore[arg-type]
    assert http.asked == [IDS[0]]


# --- our client when its proxy is gone ----------------------------------------------------------

def test_client_sends_a_bucket_creation_to_another_proxy_when_its_own_refuses_connections() -> None:
    from ais.client import AsyncClient, RetryPolicy, errors
    from ais.client.transport import Request, Response

    dead, live = "http://dead:8080", "http://live:8080"
    smap = ClusterMap(version=3, uuid="u", primary_id="L", targets={},
                      proxies={"D": Node("D", "proxy", dead, "http://dead:9080"),
                               "L": Node("L", "proxy", live, "http://live:9080")})
    sent: list[str] = []

    class Transport:
        async def send(self, request: Request) -> Response:
            sent.append(request.url)
            if request.url.startswith(dead):
                raise errors.NotConnected("connection refused", url=request.url)
            return Response(200, {}, content=b"")

        async def aclose(self) -> None:
            pass

    async def no_sleep(_: float) -> None:
        pass

    async def go() -> None:
        c = AsyncClient(dead, transport=Transport(), retry=RetryPolicy(max_attempts=3, sleep=no_sleep))
        c.router.install(smap)                # the map it cached while its proxy was alive
        await c.create_bucket("b")            # not idempotent, but never sent to the dead proxy
        await c.create_bucket("c")            # and the next call goes to the live proxy first
    asyncio.run(go())
    assert [u.split("/v1")[0] for u in sent] == [dead, live, live]

    # a connection lost after sending may have reached the proxy: a creation is not sent again
    lost: list[str] = []

    class Lossy(Transport):
        async def send(self, request: Request) -> Response:
            lost.append(request.url)
            raise errors.ConnectError("connection lost before a reply", url=request.url)

    async def once() -> None:
        c = AsyncClient(dead, transport=Lossy(), retry=RetryPolicy(max_attempts=3, sleep=no_sleep))
        c.router.install(smap)
        with pytest.raises(errors.ConnectError):
            await c.create_bucket("b")
    asyncio.run(once())
    assert len(lost) == 1
