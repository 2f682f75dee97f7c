"""Node configuration: one frozen, typed object loaded from a JSON file plus `AIS_*` overrides.

Every setting `section.key` can be overridden by the environment variable
`AIS_<SECTION>_<KEY>` (upper case), e.g. `AIS_NET_PUBLIC_PORT=51080`,
`AIS_TARGET_MOUNTPATHS=/data/1,/data/2`, `AIS_TIMEOUTS_CONTROL_S=5`.
`AIS_PRIMARY_EP` (AIStore's name) overrides `proxy.primary_url`.
A runtime change builds a new object; nothing mutates a loaded config.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any, Mapping, get_args, get_origin, get_type_hints

from ais.errors import BadRequest


@dataclass(frozen=True)
class NodeSection:
    role: str = "target"
    id: str = ""            # empty: generated on first start and persisted
    conf_dir: str = "/tmp/ais/node"   # cluster map, bucket metadata and node ID live here


@dataclass(frozen=True)
class NetSection:
    hostname: str = "127.0.0.1"
    public_port: int = 51080
    intra_port: int = 51081
    max_header_bytes: int = 16384
    header_read_timeout_s: float = 30.0
    # the fast lane (ais/fasthttp.py) in front of the public listeners' hottest routes; off, or
    # with TLS, every request takes aiohttp's handlers
    fast_lane: bool = True
    # TLS on both listeners (public and intra) when use_https; peers' certificates are checked
    # against ca_cert (empty: the system's CAs) unless skip_verify.
    use_https: bool = False
    server_crt: str = ""
    server_key: str = ""
    ca_cert: str = ""
    skip_verify: bool = False


@dataclass(frozen=True)
class ProxySection:
    primary_url: str = ""   # intra-cluster URL of the primary proxy to join
    is_primary: bool = False  # only consulted when no cluster map is persisted yet


@dataclass(frozen=True)
class TargetSection:
    mountpaths: tuple[str, ...] = ()
    fsync: bool = True
    io_workers_per_mountpath: int = 8
    write_buffer_bytes: int = 1 << 20
    # test hook: every I/O of mountpath number `slow_mountpath` (0-based; -1 = none) first waits
    # `slow_io_ms`, and the load monitor sees that disk 100% busy (a failing or saturated disk)
    slow_mountpath: int = -1
    slow_io_ms: float = 0.0
    # a mountpath with this many disk errors (EIO and the like) within a minute is disabled
    io_errors_to_disable: int = 5
    # test hook: every I/O of this mountpath (a path; "" = none) fails with EIO (settable at runtime)
    fault_eio_mountpath: str = ""


@dataclass(frozen=True)
class TimeoutsSection:
    control_s: float = 10.0          # total timeout of an intra-cluster control call
    connect_s: float = 3.0
    data_read_s: float = 60.0        # per-read timeout of data-plane streams
    keepalive_interval_s: float = 2.0
    keepalive_dead_s: float = 10.0   # primary marks a node dead after this silence
    # ... and removes a target silent this long from the cluster map (0 = never), so that its
    # objects get new owners: reads of erasure-coded objects are rebuilt there, the others
    # rebalance; a removed target that comes back is told so by its next keepalive and rejoins
    remove_dead_s: float = 30.0
    # a node whose keepalives to the primary have failed this long asks for an election
    # (ais/election.py); a probe of a node's liveness during an election gives up after probe_s
    primary_dead_s: float = 4.0
    probe_s: float = 2.0
    join_wait_s: float = 60.0
    shutdown_s: float = 10.0
    metasync_retry_s: float = 1.0


@dataclass(frozen=True)
class ClusterSection:
    secret: str = ""   # shared join secret; empty = no check


@dataclass(frozen=True)
class AuthSection:
    # Authentication and authorization (ais.auth; reference §16). Off: every request is allowed.
    # On: native requests need a bearer JWT from the AuthN service, S3 requests a SigV4 signature
    # of a key bound to a user; both are checked against the permission bits of the token.
    enabled: bool = False
    signature_method: str = "HS256"   # HS256/384/512 (key: the shared secret) or RS256/384/512 (key: public key PEM)
    signature_key: str = ""           # the key itself ...
    signature_key_file: str = ""      # ... or a file holding it
    required_audience: str = ""       # when set, tokens must carry this `aud`
    redirect_ttl_s: float = 60.0      # how long a proxy-signed redirect stays valid


@dataclass(frozen=True)
class S3Section:
    # "ACCESS_KEY:SECRET" entries accepted besides the keys managed with `ais s3 keys`;
    # with any key configured, S3 requests must carry a valid SigV4 signature.
    access_keys: tuple[str, ...] = ()
    # also serve S3 at the root (`/bucket/key`) for clients that cannot take a path prefix
    # (the minio SDK); native routes (/v1, /metrics) keep priority, so buckets named `v1`,
    # `metrics` or `s3` are reachable at /s3 only
    root: bool = True
    # virtual-host style: a Host of `<bucket>.<domain>` (e.g. `imgs.s3.local`) addresses the bucket
    # and the path is the key; empty = path style only
    virtual_host_domain: str = ""


@dataclass(frozen=True)
class BackendSection:
    # Cloud backends. Credentials come from each SDK's standard environment and files
    # (AWS_ACCESS_KEY_ID / ~/.aws, GOOGLE_APPLICATION_CREDENTIALS, AZURE_STORAGE_CONNECTION_STRING).
    # An endpoint override points a backend at an emulator or another S3-compatible store
    # (moto, MinIO, another cluster of ours at http://host:port/s3); empty = the cloud's own.
    aws_endpoint: str = ""       # also AWS_ENDPOINT_URL
    aws_region: str = ""         # empty: the SDK's default (AWS_DEFAULT_REGION), else us-east-1
    gcp_endpoint: str = ""       # also STORAGE_EMULATOR_HOST
    gcp_project: str = ""
    azure_endpoint: str = ""     # blob service URL, e.g. http://127.0.0.1:10000/devstoreaccount1
    azure_account: str = ""      # also AZURE_STORAGE_ACCOUNT
    azure_key: str = ""          # also AZURE_STORAGE_KEY
    pool_workers: int = 16       # threads per backend for blocking SDK calls
    max_retries: int = 4         # retries of idempotent calls on throttling and connection errors
    read_chunk_bytes: int = 1 << 20


@dataclass(frozen=True)
class SpaceSection:
    # Per mountpath: above high_wm_pct used, LRU evicts cached copies of remote objects (least
    # recently read first; never ais:// data) until usage is at low_wm_pct.
    high_wm_pct: int = 90
    low_wm_pct: int = 80
    capacity_bytes: int = 0       # per mountpath; 0 = the filesystem's size (else a quota: usage = our files)
    check_interval_s: float = 10.0


@dataclass(frozen=True)
class LoadSection:
    # Per-target load monitor (target.load): sampled every sample_interval_s, each dimension graded
    # Low/Moderate/High/Critical. Network utilisation (percent of the link) uses the disk watermarks.
    sample_interval_s: float = 1.0
    link_capacity_mbps: float = 10000.0   # megabits/s of the network link
    disk_util_low_wm: int = 20            # percent busy: above → Moderate
    disk_util_high_wm: int = 80           # above → High
    disk_util_max_wm: int = 95            # at or above → Critical
    mem_min_free_pct: int = 5             # available memory at or below → Critical
    mem_low_wm_pct: int = 20              # available memory above this ·17/16 → Low
    max_inflight: int = 4096              # in-flight requests: High at half, Critical at this
    max_open_files_pct: int = 90          # of RLIMIT_NOFILE: Critical at this
    pace_jobs: bool = True                # background jobs sleep and shrink by the advice (off: full speed)
    foreground_yield_ms: float = 20.0     # per object moved, while clients read from the target


@dataclass(frozen=True)
class GetBatchSection:
    # Batch-get (target.moss) on the designated target that assembles the archive.
    max_pending: int = 256               # batches assembling at once: beyond this a new one gets 429
    max_pending_high_mem: int = 96       # the same while memory is graded High
    window_bytes: int = 8 << 20          # read-ahead per source (this target's disks, or one peer's stream)
    chunk_bytes: int = 256 << 10         # unit of reads and of writes to the client
    cold_workers: int = 16               # remote (cold) entries fetched at once per target and batch


@dataclass(frozen=True)
class EtlSection:
    # Transformers (reference §6): "local" runs one process per ETL on every target (supervised,
    # restarted on a crash); "k8s" runs one pod and service per ETL and target.
    runtime: str = "local"
    # image -> local command, as "IMAGE=COMMAND" entries checked before the built-in ones
    # (etl/images.py). An image without a tag matches every tag; "python" means this node's
    # interpreter; "{port}" (or the value after --port) becomes the transformer's port.
    images: tuple[str, ...] = ()
    pass_fqn: bool = True              # hpush/ws: hand the transformer the object's local path, not its bytes
    log_max_bytes: int = 1 << 20       # transformer output kept per target (oldest half dropped beyond)
    restart_backoff_s: float = 0.5     # first wait before restarting a crashed transformer (doubles, to 10 s)
    k8s_namespace: str = "default"


@dataclass(frozen=True)
class LogSection:
    level: str = "INFO"
    file: str = ""     # empty = stderr


@dataclass(frozen=True)
class Config:
    node: NodeSection = field(default_factory=NodeSection)
    net: NetSection = field(default_factory=NetSection)
    proxy: ProxySection = field(default_factory=ProxySection)
    target: TargetSection = field(default_factory=TargetSection)
    timeouts: TimeoutsSection = field(default_factory=TimeoutsSection)
    cluster: ClusterSection = field(default_factory=ClusterSection)
    auth: AuthSection = field(default_factory=AuthSection)
    s3: S3Section = field(default_factory=S3Section)
    backend: BackendSection = field(default_factory=BackendSection)
    space: SpaceSection = field(default_factory=SpaceSection)
    load: LoadSection = field(default_factory=LoadSection)
    get_batch: GetBatchSection = field(default_factory=GetBatchSection)
    etl: EtlSection = field(default_factory=EtlSection)
    log: LogSection = field(default_factory=LogSection)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def public_dict(self) -> dict[str, Any]:
        """`to_dict()` with every secret blanked: what `GET /v1/daemon?what=config` shows."""
        d = self.to_dict()
        for section, key in SECRETS:
            if d[section][key]:
                d[section][key] = "****"
        return d

    def updated(self, changes: Mapping[str, Any]) -> "Config":
        """A new config with `section.key` values replaced (values coerced to field types)."""
        merged = self.to_dict()
        for dotted, value in changes.items():
            section, _, key = dotted.partition(".")
            if section not in merged or key not in merged[section]:
                raise BadRequest(f"unknown config key {dotted!r}")
            merged[section][key] = value
        return from_dict(merged)


# Settings a running node cannot take (listeners, identity, disks, pools and cloud clients are built
# at start-up): set in the node's config file or AIS_* environment and restart instead.
RESTART_ONLY = ("node.", "net.", "proxy.", "cluster.", "auth.", "backend.", "target.mountpaths",
                "target.io_workers_per_mountpath", "target.slow_", "log.file", "s3.root")


# Settings never shown by the config endpoints.
SECRETS = (("cluster", "secret"), ("auth", "signature_key"), ("s3", "access_keys"))


def flatten_changes(value: Mapping[str, Any]) -> dict[str, Any]:
    """`{"load": {"max_inflight": 7}}` or `{"load.max_inflight": 7}` (or a mix) → dotted keys."""
    out: dict[str, Any] = {}
    for k, v in value.items():
        if isinstance(v, Mapping):   # a section: its settings, one level (settings hold no objects)
            for name, setting in v.items():
                if isinstance(setting, Mapping):
                    raise BadRequest(f"invalid value for config {k}.{name}: an object (expected a setting's value)")
                out[f"{k}.{name}"] = setting
        else:
            out[k] = v
    return out


def runtime_changes(cfg: Config, value: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a set-config request against `cfg`: known keys that a running node can take and
    values of the right type. Returns the changes, coerced, as dotted keys."""
    changes = flatten_changes(value)
    if not changes:
        raise BadRequest("set-config needs at least one setting, e.g. {\"load.max_inflight\": 4096}")
    for key in changes:
        if key.startswith(RESTART_ONLY):
            raise BadRequest(f"config {key!r} takes effect only at start-up: set it in the node's config "
                             "file or AIS_* environment and restart the node")
    new = cfg.updated(changes).to_dict()
    return {key: new[key.partition(".")[0]][key.partition(".")[2]] for key in changes}


@dataclass(frozen=True)
class ConfigMD:
    """Cluster-wide config changes made at runtime (`set-config`): versioned and metasynced like
    the cluster map, persisted on every node, applied over each node's own config file and env."""
    version: int = 0
    changes: Mapping[str, Any] = field(default_factory=dict)   # dotted key -> value

    def to_wire(self) -> dict[str, Any]:
        return {"version": self.version, "changes": dict(self.changes)}

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> "ConfigMD":
        changes = d.get("changes") or {}
        if not isinstance(changes, Mapping):
            raise ValueError("config changes must be an object")
        return cls(int(d.get("version", 0)), dict(changes))

    def applied_to(self, base: Config) -> Config:
        """`base` with these changes; a change the node cannot take (an older or newer release) is skipped."""
        cfg = base
        for key, value in self.changes.items():
            try:
                cfg = cfg.updated({key: value})
            except BadRequest:
                continue
        return cfg


def _coerce(tp: Any, value: Any, name: str) -> Any:
    try:
        if get_origin(tp) is tuple:
            if isinstance(value, str):
                value = [v for v in value.split(",") if v]
            (inner, *_) = get_args(tp)
            return tuple(_coerce(inner, v, name) for v in value)
        if tp is bool:
            if isinstance(value, str):
                low = value.lower()
                if low in ("1", "t", "true", "yes", "on"):
                    return True
                if low in ("0", "f", "false", "no", "off", ""):
                    return False
                raise ValueError(value)
            return bool(value)
        if tp in (int, float, str):
            return tp(value)
    except (TypeError, ValueError) as exc:
        raise BadRequest(f"invalid value {value!r} for config {name}") from exc
    return value


def from_dict(data: Mapping[str, Any]) -> Config:
    sections: dict[str, Any] = {}
    for sec in dataclasses.fields(Config):
        sec_cls = sec.type if isinstance(sec.type, type) else get_type_hints(Config)[sec.name]
        raw = dict(data.get(sec.name) or {})
        hints = get_type_hints(sec_cls)
        kwargs = {}
        for f in dataclasses.fields(sec_cls):
            if f.name in raw:
                kwargs[f.name] = _coerce(hints[f.name], raw.pop(f.name), f"{sec.name}.{f.name}")
        if raw:
            raise BadRequest(f"unknown config keys in section {sec.name!r}: {sorted(raw)}")
        sections[sec.name] = sec_cls(**kwargs)
    return Config(**sections)


def env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """Collect `AIS_<SECTION>_<KEY>` values that name a known setting."""
    out: dict[str, Any] = {}
    hints = get_type_hints(Config)
    for sec in dataclasses.fields(Config):
        for f in dataclasses.fields(hints[sec.name]):
            var = f"AIS_{sec.name}_{f.name}".upper()
            if var in environ:
                out[f"{sec.name}.{f.name}"] = environ[var]
    if "AIS_PRIMARY_EP" in environ:
        out["proxy.primary_url"] = environ["AIS_PRIMARY_EP"]
    return out


def load(path: str | None, environ: Mapping[str, str] | None = None) -> Config:
    """Load the config file (JSON) and apply environment overrides."""
    data: dict[str, Any] = {}
    if path:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    cfg = from_dict(data)
    return cfg.updated(env_overrides(os.environ if environ is None else environ))
