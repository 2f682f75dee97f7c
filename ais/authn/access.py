"""Permission bits of AIStore's access control (`api/apc/access.go`; the SDK's `AccessAttr`).

A permission is a uint64 bitmask that travels as a decimal string (`"perm": "1023"`). Roles
grant it per cluster (`clusters: [{id, perm}]`) or per bucket (`buckets: [{bck, perm}]`).
"""

from __future__ import annotations

from ais.auth import CLUSTER_RO, CLUSTER_RW, RO, RW, SU, Perm

# The bits are the cluster's own (ais.auth.Perm): the service that grants them and the nodes
# that check them cannot disagree. Short names as the SDK's `AccessAttr` spells them.
GET = int(Perm.GET)
OBJ_HEAD = int(Perm.HEAD_OBJECT)
PUT = int(Perm.PUT)
APPEND = int(Perm.APPEND)
OBJ_DELETE = int(Perm.DELETE_OBJECT)
OBJ_MOVE = int(Perm.MOVE_OBJECT)
PROMOTE = int(Perm.PROMOTE)
OBJ_UPDATE = int(Perm.UPDATE_OBJECT)
BCK_HEAD = int(Perm.HEAD_BUCKET)
OBJ_LIST = int(Perm.LIST_OBJECTS)
PATCH = int(Perm.PATCH)
BCK_SET_ACL = int(Perm.SET_BUCKET_ACL)
LIST_BUCKETS = int(Perm.LIST_BUCKETS)
SHOW_CLUSTER = int(Perm.SHOW_CLUSTER)
CREATE_BUCKET = int(Perm.CREATE_BUCKET)
DESTROY_BUCKET = int(Perm.DESTROY_BUCKET)
MOVE_BUCKET = int(Perm.MOVE_BUCKET)
ADMIN = int(Perm.ADMIN)

ACCESS_RO = int(RO)
ACCESS_RW = int(RW)   # PROMOTE is granted explicitly
CLUSTER_ACCESS_RO = int(CLUSTER_RO)
CLUSTER_ACCESS_RW = int(CLUSTER_RW)
ACCESS_BUCKET_ADMIN = PATCH | BCK_SET_ACL | OBJ_UPDATE
ACCESS_SU = int(SU)

UINT64_MAX = (1 << 64) - 1

# One name per bit, as the SDK's `AccessAttr` and the Go CLI spell them.
BITS: dict[str, int] = {
    "GET": GET, "HEAD-OBJECT": OBJ_HEAD, "PUT": PUT, "APPEND": APPEND, "DELETE-OBJECT": OBJ_DELETE,
    "MOVE-OBJECT": OBJ_MOVE, "PROMOTE": PROMOTE, "UPDATE-OBJECT": OBJ_UPDATE, "HEAD-BUCKET": BCK_HEAD,
    "LIST-OBJECTS": OBJ_LIST, "PATCH": PATCH, "SET-BUCKET-ACL": BCK_SET_ACL, "LIST-BUCKETS": LIST_BUCKETS,
    "SHOW-CLUSTER": SHOW_CLUSTER, "CREATE-BUCKET": CREATE_BUCKET, "DESTROY-BUCKET": DESTROY_BUCKET,
    "MOVE-BUCKET": MOVE_BUCKET, "ADMIN": ADMIN,
}

ALIASES: dict[str, int] = {
    "RO": ACCESS_RO, "RW": ACCESS_RW, "SU": ACCESS_SU,
    "CLUSTER-RO": CLUSTER_ACCESS_RO, "CLUSTER-RW": CLUSTER_ACCESS_RW, "BUCKET-ADMIN": ACCESS_BUCKET_ADMIN,
}

# The SDK's member names (OBJ_HEAD, CREATE_BUCKET, ACCESS_RW...) are accepted as well.
_SDK_NAMES: dict[str, int] = {
    "OBJ_HEAD": OBJ_HEAD, "OBJ_DELETE": OBJ_DELETE, "OBJ_MOVE": OBJ_MOVE, "OBJ_UPDATE": OBJ_UPDATE,
    "BCK_HEAD": BCK_HEAD, "OBJ_LIST": OBJ_LIST, "BCK_SET_ACL": BCK_SET_ACL, "ACCESS_RO": ACCESS_RO,
    "ACCESS_RW": ACCESS_RW, "ACCESS_SU": ACCESS_SU, "CLUSTER_ACCESS_RO": CLUSTER_ACCESS_RO,
    "CLUSTER_ACCESS_RW": CLUSTER_ACCESS_RW, "ACCESS_BUCKET_ADMIN": ACCESS_BUCKET_ADMIN,
}

# every accepted spelling, `-` and `_` alike: "list-objects", "LIST_OBJECTS", "obj_list", "access-rw"
_BY_NAME: dict[str, int] = {k.replace("-", "_"): v for k, v in (*BITS.items(), *ALIASES.items(), *_SDK_NAMES.items())}


def parse(value: object) -> int:
    """A permission from its wire form (int or decimal string) or from names joined with `,`
    or `|` (`"ro"`, `"rw,promote"`, `"GET|PUT"`); ValueError naming what was wrong."""
    if isinstance(value, bool):
        raise ValueError(f"permission must be a uint64 or permission names, got {value!r}")
    if isinstance(value, int):
        perm = value
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            return 0
        if text.isdigit():
            perm = int(text)
        else:
            perm = 0
            for word in text.replace("|", ",").split(","):
                bit = _BY_NAME.get(word.strip().upper().replace("-", "_"))
                if bit is None:
                    raise ValueError(f"unknown permission {word.strip()!r} (known: "
                                     f"{', '.join(k.lower() for k in [*ALIASES, *BITS])})")
                perm |= bit
    else:
        raise ValueError(f"permission must be a uint64 or permission names, got {value!r}")
    if not 0 <= perm <= UINT64_MAX:
        raise ValueError(f"permission {perm} does not fit a uint64")
    return perm


def describe(perm: int) -> str:
    """`"GET,HEAD-OBJECT,..."`, or the alias when the bits are exactly one."""
    for name, bits in ALIASES.items():
        if perm == bits:
            return name.lower()
    names = [name for name, bit in BITS.items() if perm & bit]
    rest = perm & ~sum(BITS.values())
    if rest:
        names.append(hex(rest))
    return ",".join(names) or "none"
