"""API constants: URL paths, headers, query parameters and action names of the native v1 API.

Names follow AIStore's wire protocol (see shared/reference/aistore-wire.md §1); the wire
words (`smap`, `bmd`, `xaction`) appear only here and at the handlers that speak them.
"""

VERSION = "v1"

# URL path groups under /v1
OBJECTS = "objects"
BUCKETS = "buckets"
CLUSTER = "cluster"
DAEMON = "daemon"
HEALTH = "health"
METASYNC = "metasync"
REVERSE = "reverse"

# Headers
HDR_CHECKSUM_TYPE = "Ais-Checksum-Type"
HDR_CHECKSUM_VALUE = "Ais-Checksum-Value"
HDR_ATIME = "Ais-Atime"
HDR_VERSION = "Ais-Version"
HDR_CUSTOM_MD = "Ais-Custom-Md"
HDR_PRESENT = "Ais-Present"
HDR_LOCATION = "Ais-Location"
HDR_MIRROR_PATHS = "Ais-Mirror-Paths"
HDR_MIRROR_COPIES = "Ais-Mirror-Copies"
HDR_OBJ_NAME = "Ais-Name"
HDR_BCK_NAME = "Ais-Bucket-Name"
HDR_BCK_PROVIDER = "Ais-Bucket-Provider"
HDR_BUCKET_PROPS = "Ais-Bucket-Props"
HDR_VERSIONING_ENABLED = "Ais-Versioning-Enabled"
HDR_APPEND_HANDLE = "Ais-Append-Handle"
HDR_NODE_ID = "Ais-Node-Id"
HDR_XACTION_ID = "Ais-Xaction-Id"
HDR_NODE_UPTIME = "Ais-Node-Uptime"
HDR_CLUSTER_UPTIME = "Ais-Cluster-Uptime"
HDR_ERROR = "Hdr-Error"
HDR_CALLER_ID = "Ais-Caller-Id"
HDR_REQUEST_ID = "Ais-Request-Id"
HDR_CLUSTER_SECRET = "Ais-Join-Sig"
HDR_BLOB_DOWNLOAD = "Ais-Blob-Download"
HDR_BLOB_CHUNK = "Ais-Blob-Chunk"
HDR_BLOB_WORKERS = "Ais-Blob-Workers"
HDR_BACKGROUND = "Ais-Background"   # target -> target: a write of a job (paced behind client reads)
HDR_SMAP_VER = "Ais-Smap-Version"   # proxy -> target, on a relayed request: as Q_SMAP_VER
HDR_S3_PROVIDER = "Ais-S3-Provider"   # proxy -> target: the provider of the bucket an S3 name means
HDR_ARCH_APPEND = "Ais-Pine"   # PUT with archpath: ARCH_APPEND / ARCH_APPEND_IF_EXISTS flags

# Query parameters
Q_PROVIDER = "provider"
Q_NAMESPACE = "namespace"
Q_WHAT = "what"
Q_PROPS = "props"
Q_BCK_TO = "bck_to"
Q_OBJ_TO = "object_to"
Q_APPEND_TYPE = "append_type"
Q_APPEND_HANDLE = "append_handle"
Q_UPLOAD_ID = "uploadId"
Q_PART_NUMBER = "partNumber"
Q_NEW_CUSTOM = "set-new-custom"
Q_PID = "pid"
Q_UTM = "utm"
Q_SMAP_VER = "smap_ver"   # proxy -> target, in a redirect: the cluster map version it routed by
Q_PRR = "prr"
Q_UUID = "uuid"
Q_PRESENCE = "presence"
Q_FORCE = "frc"
Q_KEEP_BCK_MD = "keep_bck_md"
Q_LATEST_VER = "latest-ver"
Q_SYNCHRONIZE = "synchronize"
Q_ARCHPATH = "archpath"
Q_ARCHREGX = "archregx"
Q_ARCHMODE = "archmode"
Q_ARCHMIME = "archmime"

# `what` values
WHAT_SMAP = "smap"
WHAT_BMD = "bmd"
WHAT_SNODE = "snode"
WHAT_CONFIG = "config"
WHAT_CLUSTER_CONFIG = "cluster_config"
WHAT_NODE_STATUS = "node_status"
WHAT_STATUS = "status"
WHAT_STATUS_ALL = "status_all"
WHAT_RUNNING_ALL = "running_all"
WHAT_QUERY_STATS = "qryxstats"

# Actions
ACT_LIST = "list"
ACT_CREATE_BCK = "create-bck"
ACT_DESTROY_BCK = "destroy-bck"
ACT_MOVE_BCK = "move-bck"
ACT_COPY_BCK = "copy-bck"
ACT_SET_BPROPS = "set-bprops"
ACT_RESET_BPROPS = "reset-bprops"
ACT_RENAME_OBJ = "rename-obj"
ACT_CHECK_LOCK = "check-lock"
ACT_MPT_UPLOAD = "mpt-upload"
ACT_MPT_COMPLETE = "mpt-complete"
ACT_MPT_ABORT = "mpt-abort"
ACT_START = "start"
ACT_STOP = "stop"
ACT_SUMMARY_BCK = "summary-bck"
ACT_PREFETCH_LIST = "prefetch-listrange"
ACT_COPY_LIST = "copy-listrange"
ACT_EVICT_LIST = "evict-listrange"
ACT_DELETE_LIST = "delete-listrange"
ACT_EVICT_REMOTE_BCK = "evict-remote-bck"
ACT_BLOB_DOWNLOAD = "blob-download"
ACT_ARCHIVE = "archive"

# `Ais-Pine` flags (AIStore's apc.ArchAppend, apc.ArchAppendIfExist)
ARCH_APPEND = 1             # append to an existing shard
ARCH_APPEND_IF_EXISTS = 2   # append, or create the shard when it does not exist

# Content types
MSGPACK = "application/msgpack"
JSON = "application/json"

# Limits
MAX_PAGE_SIZE = 10_000
MAX_OBJ_NAME_BYTES = 1024
MAX_CONTROL_BODY_BYTES = 1 << 20

# HRW seed (cos.MLCG32)
HASH_SEED = 1103515245

PROVIDER_AIS = "ais"
PROVIDER_ALIASES = {
    "": "ais", "ais": "ais",
    "aws": "aws", "s3": "aws",
    "gcp": "gcp", "gs": "gcp",
    "azure": "azure", "az": "azure",
    "oci": "oci", "oc": "oci",
}
# Display scheme of each provider in a cname (`s3://bucket`).
PROVIDER_SCHEME = {"ais": "ais", "aws": "s3", "gcp": "gs", "azure": "az", "oci": "oc"}

# Snode flags
FLAG_NON_ELECTABLE = 1
FLAG_MAINTENANCE = 4
FLAG_DECOMMISSION = 8

# runtime cluster config (`PUT /v1/cluster` action, or `PUT /v1/cluster/<action>?section.key=value`)
ACT_SET_CONFIG = "set-config"
ACT_RESET_CONFIG = "reset-config"

# mountpaths of a target (`PUT /v1/daemon/mountpaths`, value = the path; `GET /v1/daemon?what=mountpaths`)
WHAT_MOUNTPATHS = "mountpaths"
ACT_ATTACH_MP = "attach-mp"
ACT_DETACH_MP = "detach-mp"
ACT_ENABLE_MP = "enable-mp"
ACT_DISABLE_MP = "disable-mp"
MOUNTPATH_ACTIONS = (ACT_ATTACH_MP, ACT_DETACH_MP, ACT_ENABLE_MP, ACT_DISABLE_MP)
ACT_MAKE_N_COPIES = "make-n-copies"
