"""ETL wire types shared by proxies, targets and transformers (reference §6).

The init message (ETLSpecMsg) and its validation, the ETL metadata document the primary owns
and metasyncs like the cluster map (`EtlMD`), the transformer contract's names (query
parameters, headers, WebSocket control keys), and the errors ETL requests answer with.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

from ais.errors import AisError, BadRequest, Conflict, NotFound
from ais.names import parse_duration_s

# --- names on the wire ------------------------------------------------------------------------

Q_ETL_NAME = "etl_name"
Q_ETL_ARGS = "etl_args"
Q_ETL_PIPELINE = "etl_pipeline"
Q_ETL_FQN = "etl_fqn"
HDR_NODE_URL = "Ais-Node-Url"                  # direct put / pipeline: the next URLs, comma-separated
HDR_DIRECT_PUT_LENGTH = "Ais-Direct-Put-Length"  # transformer -> target: bytes it delivered itself
HDR_ETL_RETRY_REASON = "Ais-Etl-Retry-Reason"
RETRY_DIRECT_PUT_TRANSIENT = "direct-put-transient"
WS_PIPELINE, WS_FQN, WS_PATH = "pipeline", "fqn", "path"

ACT_ETL_BCK = "etl-bck"
ACT_ETL_LIST = "etl-listrange"

STAGE_INIT = "Initializing"
STAGE_RUNNING = "Running"
STAGE_ABORTED = "Aborted"     # stopped (AIStore shows a stopped ETL as aborted)

COMM_HPUSH, COMM_HPULL, COMM_WS = "hpush://", "hpull://", "ws://"
COMM_TYPES = (COMM_HPUSH, COMM_HPULL, COMM_WS)

DEFAULT_INIT_TIMEOUT_S = 45.0   # server-side defaults when the message leaves them unset
DEFAULT_OBJ_TIMEOUT_S = 10.0
TRANSFORMER_PORT = 8000          # the container port of the reference (Kubernetes runtime)

_NAME_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])")


# --- errors -----------------------------------------------------------------------------------

class EtlNotFound(NotFound):
    """`etl job NAME does not exist`: the SDK maps a 404 with "etl job" to ErrETLNotFound."""
    code = "etl-not-found"

    def __init__(self, name: str) -> None:
        super().__init__(f"etl job {name} does not exist")


class EtlExists(Conflict):
    """`etl job NAME already exists`: a 409 with "etl job" is the SDK's ErrETLAlreadyExists."""
    code = "etl-exists"

    def __init__(self, name: str) -> None:
        super().__init__(f"etl job {name} already exists")


class TransformFailed(AisError):
    """A transformer crashed, hung past the per-object timeout, or answered with an error.

    424 (Failed Dependency), not 5xx: the SDK silently retries every 5xx GET for about 90 s,
    and a transform that failed on this object fails the same way again.
    """
    status = 424
    code = "etl-transform-failed"

    def __init__(self, etl: str, cname: str, reason: str, *, ecode: int = 0) -> None:
        super().__init__(f"etl[{etl}]: failed to transform {cname}: {reason}")
        self.etl, self.cname, self.reason, self.ecode = etl, cname, reason, ecode or self.status


# --- the init message -------------------------------------------------------------------------

def validate_name(name: str) -> str:
    """The reference's rule: 6-32 characters of [a-z0-9-], starting and ending alphanumeric."""
    if not isinstance(name, str) or not name:
        raise BadRequest("missing ETL name")
    if len(name) < 6:
        raise BadRequest(f"ETL name {name!r} is too short (at least 6 characters)")
    if len(name) > 32:
        raise BadRequest(f"ETL name {name!r} is too long (at most 32 characters)")
    if not _NAME_RE.fullmatch(name):
        raise BadRequest(f"ETL name {name!r} is invalid: must start/end with a lowercase letter or digit "
                         "and contain only [a-z0-9-]")
    return name


def _duration(msg: Mapping[str, Any], key: str, default_s: float) -> float:
    raw = msg.get(key)
    if raw in (None, "", 0):
        return default_s
    if isinstance(raw, (int, float)):   # Go marshals a Duration as nanoseconds
        return float(raw) / 1e9
    try:
        return parse_duration_s(str(raw)) or default_s
    except ValueError:
        raise BadRequest(f"invalid {key} {raw!r}: expected a duration such as 45s or 5m") from None


def _env_list(raw: Any, where: str) -> tuple[tuple[str, str], ...]:
    if raw in (None, ""):
        return ()
    if not isinstance(raw, list):
        raise BadRequest(f"{where} must be a list of {{name, value}}")
    out = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
            raise BadRequest(f"{where}: every entry needs a name")
        out.append((item["name"], "" if item.get("value") is None else str(item["value"])))
    return tuple(out)


@dataclass(frozen=True)
class InitMsg:
    """ETLSpecMsg, parsed. `raw` is the message as submitted (what `show` answers)."""

    name: str
    comm: str
    image: str
    command: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    init_timeout_s: float
    obj_timeout_s: float
    direct_put: bool
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def env_map(self) -> dict[str, str]:
        return dict(self.env)

    @classmethod
    def parse(cls, msg: Any) -> "InitMsg":
        if not isinstance(msg, dict):
            raise BadRequest("ETL init message must be a JSON object")
        name = validate_name(msg.get("name", ""))
        comm = str(msg.get("communication") or COMM_HPUSH)
        if "://" not in comm:
            comm += "://"
        if comm not in COMM_TYPES:
            raise BadRequest(f"unknown communication type {msg.get('communication')!r}; "
                             f"expected one of {', '.join(COMM_TYPES)}")
        direct_put = bool(msg.get("support_direct_put", False))
        if comm == COMM_WS and not direct_put:
            raise BadRequest("ws:// communication requires direct put (support_direct_put)")
        if msg.get("spec"):
            raise BadRequest("init with a pod spec (InitSpecMsg) is not supported: send runtime.image")
        runtime = msg.get("runtime")
        if not isinstance(runtime, dict) or not isinstance(runtime.get("image"), str) or not runtime["image"]:
            raise BadRequest("ETL init message needs runtime.image")
        command = runtime.get("command") or []
        if isinstance(command, str):
            command = command.split()
        if not isinstance(command, list) or not all(isinstance(c, str) for c in command):
            raise BadRequest("runtime.command must be a list of strings")
        env = _env_list(runtime.get("env"), "runtime.env") + _env_list(msg.get("env"), "env")
        return cls(name=name, comm=comm, image=runtime["image"], command=tuple(command), env=env,
                   init_timeout_s=_duration(msg, "init_timeout", DEFAULT_INIT_TIMEOUT_S),
                   obj_timeout_s=_duration(msg, "obj_timeout", DEFAULT_OBJ_TIMEOUT_S),
                   direct_put=direct_put, raw=dict(msg))


# --- the metadata document ---------------------------------------------------------------------

@dataclass(frozen=True)
class EtlEntry:
    """One ETL as the cluster knows it: the init message, its stage, and the secret that
    authorises its transformers' calls back into targets (`/v1/etl/_object/<name>/<secret>/...`)."""

    msg: Mapping[str, Any]
    stage: str
    secret: str
    job_id: str

    @property
    def init(self) -> InitMsg:
        return InitMsg.parse(dict(self.msg))

    def to_wire(self) -> dict[str, Any]:
        return {"init_msg": dict(self.msg), "stage": self.stage, "secret": self.secret, "xaction_id": self.job_id}

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> "EtlEntry":
        return cls(msg=dict(d["init_msg"]), stage=str(d.get("stage") or STAGE_RUNNING),
                   secret=str(d.get("secret") or ""), job_id=str(d.get("xaction_id") or ""))


@dataclass(frozen=True)
class EtlMD:
    """ETL metadata (our `etlmd`): versioned and immutable, owned by the primary, metasynced."""

    version: int
    etls: Mapping[str, EtlEntry] = field(default_factory=dict)

    def get(self, name: str) -> EtlEntry | None:
        return self.etls.get(name)

    def with_etl(self, name: str, entry: EtlEntry) -> "EtlMD":
        return replace(self, version=self.version + 1, etls={**self.etls, name: entry})

    def without(self, name: str) -> "EtlMD":
        return replace(self, version=self.version + 1, etls={k: v for k, v in self.etls.items() if k != name})

    def to_wire(self) -> dict[str, Any]:
        return {"version": str(self.version), "etls": {k: v.to_wire() for k, v in self.etls.items()}}

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> "EtlMD":
        return cls(version=int(d["version"]),
                   etls={k: EtlEntry.from_wire(v) for k, v in (d.get("etls") or {}).items()})


def not_running_message(name: str, primary_url: str) -> str:
    """The reference's text for an inline GET naming an unknown ETL (a plain 404 to the SDK)."""
    return f'{name} does not exist - try starting new ETL with "{primary_url}/v1/etl/init" endpoint'
