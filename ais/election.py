"""Primary election, the part every node plays: ranking candidates, probing, voting.

When a node's keepalives to the primary have failed for `timeouts.primary_dead_s`, it asks the
candidate to run an election (`POST /v1/vote/init`). The candidate is the electable proxy, not
in maintenance, with the highest ID digest besides the primary (reference §3.2 `HrwProxy`);
one that does not answer is passed over for the next. The candidate's side (confirm, collect
votes, commit a new cluster map) lives in proxy/election.py.

A node votes (`POST /v1/vote/proxy`) yes iff
- the request is about its cluster and the primary it knows (its map has not moved on to
  another primary),
- it cannot reach the primary itself (a probe of the primary's intra `/v1/health` gets no
  answer within `timeouts.probe_s`), and
- the candidate is the HRW choice in its own map: every proxy ranked above it is unreachable.
Its answer carries its metadata when any document is newer than the candidate's, so that the
new primary continues from the newest versions anyone holds.

Both routes live on the intra listener only and need the cluster secret when one is set.
"""

from __future__ import annotations

import hmac
import logging
from typing import TYPE_CHECKING, Any, Callable, Mapping

from aiohttp import web

from ais import apc
from ais.cmap import ClusterMap, Node
from ais.config import Config
from ais.errors import AisError, BadMessage, Forbidden
from ais.intra import IntraClient, PeerError
from ais.web import read_json

if TYPE_CHECKING:   # ais.membership's ClusterAgent calls ask_candidate: no import cycle at run time
    from ais.membership import MetaStore

log = logging.getLogger(__name__)

VOTE_PATH = "/v1/vote/proxy"   # a candidate asks for a vote
INIT_PATH = "/v1/vote/init"    # a node that lost the primary asks the candidate to run an election


def check_secret(cfg: Config, request: web.Request) -> None:
    secret = cfg.cluster.secret
    if secret and not hmac.compare_digest(request.headers.get(apc.HDR_CLUSTER_SECRET, ""), secret):
        raise Forbidden("election requests need the cluster secret")


def secret_headers(cfg: Config) -> dict[str, str]:
    return {apc.HDR_CLUSTER_SECRET: cfg.cluster.secret} if cfg.cluster.secret else {}


async def reachable(http: IntraClient, node: Node, timeout_s: float) -> bool:
    """True if `node` answers at all (any status) within `timeout_s`."""
    try:
        await http.call("GET", f"{node.intra_url}/v1/health", timeout_s=timeout_s)
    except PeerError:
        return True     # it answered, with an error: alive
    except AisError:
        return False    # connection refused, reset or timed out
    return True


async def ranked_above_alive(http: IntraClient, smap: ClusterMap, candidate_id: str, timeout_s: float) -> Node | None:
    """A proxy ranked above `candidate_id` in `smap` that answers (so the candidate is not the
    HRW choice), else None. Raises LookupError if the candidate is not electable in `smap`."""
    for node in smap.electable_proxies():
        if node.id == candidate_id:
            return None
        if await reachable(http, node, timeout_s):
            return node
    raise LookupError(f"p[{candidate_id}] is not an electable proxy in cluster map v{smap.version}")


def votes_needed(electorate: int) -> int:
    """Yes votes that elect, out of `electorate` nodes (every node of the map but the old
    primary, the candidate included): more than half."""
    return electorate // 2 + 1


def _int(body: Mapping[str, Any], key: str) -> int:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).isdigit():
        raise BadMessage(f"election request: {key!r} must be a whole number, got {value!r}")
    return int(value)


def _str(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise BadMessage(f"election request: {key!r} must be a non-empty string, got {value!r}")
    return value


def parse_request(body: Any) -> tuple[str, str, int, tuple[int, ...]]:
    """(uuid, primary ID, cluster map version, versions) of a vote or init request."""
    if not isinstance(body, dict):
        raise BadMessage("election request must be a JSON object")
    versions = body.get("versions") or []
    if not isinstance(versions, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in versions):
        raise BadMessage("election request: 'versions' must be a list of whole numbers")
    return _str(body, "uuid"), _str(body, "primary"), _int(body, "smap_version"), tuple(versions)


def request_body(store: MetaStore, smap: ClusterMap, **extra: str) -> dict[str, Any]:
    return {"uuid": smap.uuid, "primary": smap.primary_id, "smap_version": smap.version,
            "versions": list(store.versions()), **extra}


def newer_payload(store: MetaStore, versions: tuple[int, ...]) -> dict[str, Any] | None:
    """This node's metadata if any document is newer than `versions`, else None."""
    mine = store.versions()
    padded = versions + (0,) * (len(mine) - len(versions))
    return store.payload() if any(m > v for m, v in zip(mine, padded)) else None


class Voter:
    """Answers vote requests (`POST /v1/vote/proxy`) on every node's intra listener."""

    def __init__(self, me: Node, store: MetaStore, http: IntraClient, cfg: Callable[[], Config]) -> None:
        self.me, self.store, self.http, self.cfg = me, store, http, cfg

    async def handle(self, request: web.Request) -> web.StreamResponse:
        cfg = self.cfg()
        check_secret(cfg, request)
        body = await read_json(request)
        uuid, primary_id, smap_version, versions = parse_request(body)
        candidate = _str(body, "candidate")
        yes, reason = await self.vote(uuid, primary_id, smap_version, candidate, cfg.timeouts.probe_s)
        log.info("vote for p[%s] (primary p[%s] of cluster map v%d): %s, %s", candidate, primary_id, smap_version,
                 "yes" if yes else "no", reason)
        return web.json_response({"yes": yes, "reason": reason, "payload": newer_payload(self.store, versions)})

    async def vote(self, uuid: str, primary_id: str, smap_version: int, candidate: str,
                   probe_s: float) -> tuple[bool, str]:
        smap = self.store.smap
        if smap is None:
            return False, f"{self.me.display} has no cluster map"
        if uuid != smap.uuid:
            return False, f"another cluster ({uuid} != {smap.uuid})"
        if smap.primary_id == candidate:
            return True, f"p[{candidate}] is already the primary in cluster map v{smap.version}"
        if smap.primary_id != primary_id:
            return False, f"the primary is p[{smap.primary_id}] in cluster map v{smap.version}"
        if smap.primary_id == self.me.id:
            return False, "I am the primary"
        if await reachable(self.http, smap.primary, probe_s):
            return False, f"the primary {smap.primary.display} answers"
        try:
            above = await ranked_above_alive(self.http, smap, candidate, probe_s)
        except LookupError as exc:
            return False, str(exc)
        if above is not None:
            return False, f"{above.display} ranks above p[{candidate}] and answers"
        return True, f"the primary {smap.primary.display} does not answer"


async def ask_candidate(http: IntraClient, me: Node, store: MetaStore, smap: ClusterMap,
                        headers: Mapping[str, str], timeout_s: float) -> bool:
    """Ask the first candidate that answers to run an election; applies the metadata it sends
    back (when the cluster has a primary again). False if `me` is that candidate: the caller
    runs the election itself (only a proxy can)."""
    for cand in smap.electable_proxies():
        if cand.id == me.id:
            return False
        try:
            answer = await http.call_json("POST", f"{cand.intra_url}{INIT_PATH}", json_body=request_body(store, smap),
                                          headers=headers, timeout_s=timeout_s)
        except PeerError as exc:
            log.warning("candidate %s refused to run an election: %s", cand.display, exc)
            return True
        except AisError as exc:
            log.warning("candidate %s does not answer (%s): asking the next", cand.display, exc)
            continue
        if isinstance(answer, dict) and answer.get("smap"):
            await store.apply_wire(answer)
        return True
    log.warning("the primary is down and no electable proxy answers")
    return True
