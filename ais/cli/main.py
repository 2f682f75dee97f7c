"""`ais`: the command line of the cluster, built on `ais.client`.

This module is the entry point and the command tree (argparse); each area lives in its own
module: buckets.py (`ls`, `bucket`), objects.py (`put`, `get`, `object`, `prefetch`, `evict`),
archive.py (`archive`, `ml get-batch`), jobs.py (`job`), show.py (`show`, `storage`, cluster
membership), config.py (`config`), etl.py (`etl`), s3keys.py (`s3 keys`), auth.py (`auth`, whose
subtree it builds itself with the builders here), localcluster.py
(`cluster up|down|status`), completion.py; output helpers in render.py, shared plumbing in
common.py. Errors print as one line `ais: <message>` with exit status 1 (2 for usage errors).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Callable, Sequence

from ais.cli import (archive, auth, buckets, completion, config, etl, jobs, localcluster, mountpaths, nodes, objects,
                     s3keys, show)
from ais.cli.common import CommandError, close_clients, endpoint
from ais.cli.render import table
from ais.client import ClientError, ConnectError, StatusError, TransportError

Handler = Callable[[argparse.Namespace], int]
_SUB = "_ais_subparsers"


# --- local cluster (ais cluster up|down|status) --------------------------------------------------

def cmd_cluster_up(a: argparse.Namespace) -> int:
    spec = localcluster.up(a.dir, a.proxies, a.targets, a.mountpaths, a.port, fsync=not a.no_fsync,
                           https=a.https)
    n_p = sum(1 for n in spec.nodes if n.role == "proxy")
    print(f"Cluster ready: {n_p} prox{'y' if n_p == 1 else 'ies'}, {len(spec.nodes) - n_p} target(s), data in {spec.root}")
    print(f"AIS_ENDPOINT={spec.endpoint}")
    print(f"\n  export AIS_ENDPOINT={spec.endpoint}")
    ca = ""
    if spec.https:
        print(f"  export AIS_CLIENT_CA={spec.ca_cert}     # the cluster's CA (SDK: Client(..., ca_cert=...))")
        ca = f", ca_cert='{spec.ca_cert}'"
    print(f"  python -c \"from aistore import Client; print(Client('{spec.endpoint}'{ca}).cluster().get_info())\"")
    print("  ais cluster status        ais cluster down [--purge]")
    return 0


def cmd_cluster_down(a: argparse.Namespace) -> int:
    if a.purge and not a.yes and sys.stdin.isatty():
        answer = input(f"Stop the cluster and delete ALL its data in {a.dir}? [Y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("aborted")
            return 1
    stopped = localcluster.down(a.dir, purge=a.purge)
    print(f"stopped {stopped} node(s)" + (f"; removed {a.dir}" if a.purge else ""))
    return 0


def cmd_cluster_status(a: argparse.Namespace) -> int:
    rows = localcluster.status(a.dir)
    if a.json:
        print(json.dumps(rows, indent=2))
    else:
        cols = ["name", "role", "id", "url", "pid", "state", "mountpaths"]
        print(table(cols, ([r[c] for c in cols] for r in rows)))
    return 0


# --- building the tree -----------------------------------------------------------------------------

class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32)


def group(parent: argparse.ArgumentParser, name: str, help: str, examples: Sequence[str],
          aliases: Sequence[str] = ()) -> argparse.ArgumentParser:
    """A command with subcommands."""
    p: argparse.ArgumentParser = _subparsers(parent).add_parser(
        name, help=help, description=help, aliases=list(aliases), epilog=_examples(examples), formatter_class=_Formatter)
    p.set_defaults(fn=_usage(p))
    return p


def leaf(parent: argparse.ArgumentParser, name: str, fn: Handler, help: str, examples: Sequence[str], *,
         remote: bool = True, aliases: Sequence[str] = ()) -> argparse.ArgumentParser:
    """A command that runs `fn`; `remote` ones talk to a cluster and take --endpoint."""
    p: argparse.ArgumentParser = _subparsers(parent).add_parser(
        name, help=help, description=help, aliases=list(aliases), epilog=_examples(examples), formatter_class=_Formatter)
    p.set_defaults(fn=fn)
    if remote:
        p.add_argument("--endpoint", metavar="URL",
                       help="cluster endpoint (default: $AIS_ENDPOINT, the CLI config's cluster.url, "
                            "http://127.0.0.1:8080)")
    return p


def _subparsers(p: argparse.ArgumentParser) -> Any:
    sub = getattr(p, _SUB, None)
    if sub is None:
        sub = p.add_subparsers(dest=f"cmd_{id(p)}", metavar="COMMAND", title="commands")
        setattr(p, _SUB, sub)
    return sub


def _examples(lines: Sequence[str]) -> str:
    return "examples:\n" + "\n".join(f"  {e}" for e in lines)


def _usage(p: argparse.ArgumentParser) -> Handler:
    def fn(a: argparse.Namespace) -> int:
        p.print_help(sys.stderr)
        return 2
    return fn


def out_opts(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", "-j", action="store_true", help="print JSON")
    p.add_argument("--no-headers", "-H", action="store_true", help="print table rows without headers and footers")


def yes_opt(p: argparse.ArgumentParser) -> None:
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")


def wait_opts(p: argparse.ArgumentParser) -> None:
    p.add_argument("--wait", action="store_true", help="wait for the job to finish (progress on a terminal)")
    p.add_argument("--timeout", type=float, default=600.0, metavar="SECONDS",
                   help="how long --wait waits (default 600)")


def select_opts(p: argparse.ArgumentParser) -> None:
    p.add_argument("--list", metavar="NAMES", help="comma-separated object names")
    p.add_argument("--template", metavar="TEMPLATE", help="object names as a brace range: 'shard-{0000..0999}.tar'")
    p.add_argument("--prefix", metavar="PREFIX", help="objects whose names start with PREFIX")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="ais", formatter_class=_Formatter,
        description="Manage an ais cluster: buckets, objects, jobs, ETL, cluster and storage.\n"
                    "Names: provider://bucket/object (ais://, s3:// or aws://, gs:// or gcp://, az:// or azure://).",
        epilog=_examples(["ais cluster up && export AIS_ENDPOINT=http://127.0.0.1:8080",
                          "ais bucket create ais://data", "ais put -r ./images ais://data/train/",
                          "ais ls ais://data --props name,size,checksum", "ais get ais://data/train/0001.jpg .",
                          "ais show cluster", "source <(ais completion bash)"]))
    ap.set_defaults(fn=_usage(ap))
    _ls(ap)
    _bucket(ap)
    _objects(ap)
    _archive(ap)
    _etl(ap)
    _job(ap)
    _show(ap)
    _cluster(ap)
    _config(ap)
    _storage(ap)
    _s3(ap)
    auth.build(ap, group, leaf, out_opts)
    c = leaf(ap, "completion", completion.cmd_completion, "print a shell completion script",
             ["ais completion bash > ~/.local/share/bash-completion/completions/ais   # or: source <(ais completion bash)",
              "ais completion zsh > \"${fpath[1]}/_ais\""], remote=False)
    c.add_argument("shell", choices=["bash", "zsh"])
    return ap


def _ls(ap: argparse.ArgumentParser) -> None:
    p = leaf(ap, "ls", buckets.cmd_ls, "list buckets, or the objects of a bucket",
             ["ais ls                                  # every bucket", "ais ls s3://            # buckets of one provider",
              "ais ls ais://data --prefix train/ --props name,size,checksum,atime",
              "ais ls ais://data/train/ --json", "ais ls ais://data --summary",
              "ais ls s3://remote --cached             # only what the cluster holds",
              "ais ls ais://data --paged --page-size 1000 --max-pages 2"])
    p.add_argument("name", nargs="?", default="", help="provider://bucket[/prefix], or provider:// for buckets")
    p.add_argument("--prefix", help="objects whose names start with PREFIX")
    p.add_argument("--props", help="comma-separated: name,size,checksum,atime,version,cached,status,copies,"
                                   "custom,location (or all)")
    p.add_argument("--summary", action="store_true", help="object counts and sizes instead of names")
    p.add_argument("--cached", action="store_true", help="remote buckets: only objects present in the cluster")
    p.add_argument("--paged", action="store_true", help="print page by page")
    p.add_argument("--page-size", type=int, default=0, help="objects per page (default: the cluster's)")
    p.add_argument("--max-pages", type=int, default=0, help="with --paged: stop after this many pages")
    p.add_argument("--limit", type=int, default=0, help="list at most this many objects")
    out_opts(p)


def _bucket(ap: argparse.ArgumentParser) -> None:
    g = group(ap, "bucket", "create, destroy, copy and evict buckets; show and set their properties",
              ["ais bucket create ais://data", "ais bucket props show ais://data versioning",
               "ais bucket props set ais://data versioning.enabled=true", "ais bucket cp ais://data ais://backup --wait",
               "ais bucket summary ais://data", "ais bucket rm ais://scratch -y"])
    p = leaf(g, "create", buckets.cmd_create, "create ais buckets",
             ["ais bucket create ais://data ais://models", "ais bucket create ais://data --props checksum.type=md5",
              "ais bucket create ais://data --ignore-error"])
    p.add_argument("buckets", nargs="+", metavar="BUCKET")
    p.add_argument("--props", nargs="+", metavar="KEY=VALUE", help="initial properties")
    p.add_argument("--ignore-error", dest="ignore_existing", action="store_true", help="a bucket that exists is fine")
    p = leaf(g, "rm", buckets.cmd_rm, "destroy ais buckets and all their objects",
             ["ais bucket rm ais://scratch", "ais bucket rm ais://a ais://b --yes"])
    p.add_argument("buckets", nargs="+", metavar="BUCKET")
    p.add_argument("--ignore-error", dest="ignore_missing", action="store_true", help="a missing bucket is fine")
    yes_opt(p)
    pg = group(g, "props", "show or set bucket properties",
               ["ais bucket props show ais://data", "ais bucket props set ais://data mirror.enabled=true"])
    p = leaf(pg, "show", buckets.cmd_props_show, "show bucket properties (all, or one section)",
             ["ais bucket props show ais://data", "ais bucket props show ais://data checksum --json"])
    p.add_argument("bucket")
    p.add_argument("section", nargs="?", default="", help="a property or section, e.g. versioning")
    out_opts(p)
    p = leaf(pg, "set", buckets.cmd_props_set, "set bucket properties",
             ["ais bucket props set ais://data versioning.enabled=true checksum.type=md5",
              "ais bucket props set ais://data '{\"versioning\": {\"enabled\": true}}'"])
    p.add_argument("bucket")
    p.add_argument("pairs", nargs="+", metavar="KEY=VALUE", help="key=value pairs, or one JSON object")
    p = leaf(g, "summary", buckets.cmd_summary, "object counts and sizes of buckets",
             ["ais bucket summary ais://data", "ais bucket summary ais://data --prefix train/ --json",
              "ais bucket summary s3://remote --cached"])
    p.add_argument("buckets", nargs="+", metavar="BUCKET")
    p.add_argument("--prefix", help="only objects whose names start with PREFIX")
    p.add_argument("--cached", action="store_true", help="remote buckets: only objects present in the cluster")
    out_opts(p)
    p = leaf(g, "cp", buckets.cmd_cp, "copy a bucket (or the objects under a prefix) into another bucket",
             ["ais bucket cp ais://data ais://backup", "ais bucket cp s3://remote ais://local --wait",
              "ais bucket cp ais://data/train/ ais://train-only --wait --timeout 120"])
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--prefix", help="only objects whose names start with PREFIX")
    wait_opts(p)
    p = leaf(g, "evict", buckets.cmd_evict, "drop the cached copies of remote buckets",
             ["ais bucket evict s3://remote", "ais bucket evict s3://remote --keep-md -y"])
    p.add_argument("buckets", nargs="+", metavar="BUCKET")
    p.add_argument("--keep-md", action="store_true", help="keep the bucket's metadata (properties)")
    yes_opt(p)


def _objects(ap: argparse.ArgumentParser) -> None:
    p = leaf(ap, "put", objects.cmd_put, "put a file, a directory (-r) or stdin (-) into a bucket",
             ["ais put ./image.jpg ais://data                 # => ais://data/image.jpg",
              "ais put ./image.jpg ais://data/train/0001.jpg",
              "ais put -r ./images ais://data/train/ --concurrency 16",
              "tar c ./dir | ais put - ais://data/dir.tar"])
    p.add_argument("src", help="a file, a directory (with -r), or - for stdin")
    p.add_argument("dst", help="provider://bucket[/object or prefix/]")
    p.add_argument("-r", "--recursive", action="store_true", help="put every file under a directory")
    p.add_argument("--concurrency", type=int, default=8, help="parallel PUTs (default 8)")
    p.add_argument("--dry-run", action="store_true", help="print what would be put")

    p = leaf(ap, "get", objects.cmd_get, "get an object (to a file, a directory or stdout) or many objects",
             ["ais get ais://data/train/0001.jpg                # => ./0001.jpg",
              "ais get ais://data/train/0001.jpg /tmp/x.jpg", "ais get ais://data/a.txt -      # to stdout",
              "ais get ais://data/shard.tar file.txt --archpath dir/file.txt",
              "ais get ais://data/img.jpg out.jpg --etl resize-images",
              "ais get ais://data ./local --prefix train/ --concurrency 16"])
    p.add_argument("src", help="provider://bucket/object, or provider://bucket[/prefix/] for many")
    p.add_argument("dst", nargs="?", default="", help="a file, a directory, or - for stdout")
    p.add_argument("--archpath", help="a file inside the shard (archive) to get")
    p.add_argument("--etl", metavar="NAME", help="transform the object with this ETL on the way")
    p.add_argument("--prefix", help="get every object whose name starts with PREFIX")
    p.add_argument("--latest", action="store_true", help="remote buckets: check the backend for a newer version")
    p.add_argument("--offset", type=int, default=0, help="read from this byte")
    p.add_argument("--length", type=int, default=None, help="read this many bytes")
    p.add_argument("--concurrency", type=int, default=8, help="parallel GETs (default 8)")

    g = group(ap, "object", "one object: cat, rm, mv, cp, show",
              ["ais object cat ais://data/a.txt", "ais object show ais://data/a.txt",
               "ais object mv ais://data/a.txt b.txt", "ais object rm ais://data/b.txt"])
    p = leaf(g, "cat", objects.cmd_cat, "write an object to stdout",
             ["ais object cat ais://data/a.txt", "ais object cat ais://data/shard.tar --archpath x/y.txt",
              "ais object cat ais://data/a.txt --offset 100 --length 10"])
    p.add_argument("name")
    p.add_argument("--archpath", help="a file inside the shard")
    p.add_argument("--etl", metavar="NAME", help="transform with this ETL")
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--length", type=int, default=None)
    p = leaf(g, "rm", objects.cmd_rm, "delete objects (named, or a --list, --template or --prefix of a bucket)",
             ["ais object rm ais://data/a.txt ais://data/b.txt", "ais object rm ais://data --prefix tmp/ -y --wait",
              "ais object rm ais://data --template 'shard-{000..099}.tar' -y"])
    p.add_argument("names", nargs="+", metavar="NAME")
    select_opts(p)
    yes_opt(p)
    wait_opts(p)
    p = leaf(g, "mv", objects.cmd_mv, "rename an object (ais buckets)",
             ["ais object mv ais://data/a.txt b.txt", "ais object mv ais://data/a.txt ais://data/dir/a.txt"])
    p.add_argument("src")
    p.add_argument("dst", help="the new name (or provider://bucket/new-name in the same bucket)")
    p = leaf(g, "cp", objects.cmd_cp, "copy an object (in the cluster, optionally through an ETL)",
             ["ais object cp ais://data/a.txt ais://backup", "ais object cp ais://data/a.txt ais://data/a-copy.txt",
              "ais object cp ais://data/a.txt ais://out/a.md5 --etl md5"])
    p.add_argument("src")
    p.add_argument("dst", help="provider://bucket[/object] (same name when not given)")
    p.add_argument("--etl", metavar="NAME", help="transform with this ETL")
    p = leaf(g, "show", objects.cmd_show, "show an object's properties",
             ["ais object show ais://data/a.txt", "ais object show s3://remote/x.bin --json"])
    p.add_argument("name")
    out_opts(p)

    p = leaf(ap, "prefetch", objects.cmd_prefetch, "fetch remote objects into the cluster (a job)",
             ["ais prefetch s3://remote --prefix train/ --wait", "ais prefetch s3://remote/one.bin",
              "ais prefetch s3://remote --template 'shard-{0000..0099}.tar' --wait --timeout 300",
              "ais prefetch s3://remote --list a.bin,b.bin --latest"])
    p.add_argument("name", help="provider://bucket[/object or prefix/]")
    select_opts(p)
    p.add_argument("--latest", action="store_true", help="refetch objects whose remote version changed")
    wait_opts(p)
    p = leaf(ap, "evict", objects.cmd_evict, "drop cached copies of remote objects (or of a whole bucket)",
             ["ais evict s3://remote/one.bin", "ais evict s3://remote --prefix train/ --wait",
              "ais evict s3://remote --template 'shard-{0000..0049}.tar'", "ais evict s3://remote -y --keep-md"])
    p.add_argument("name", help="provider://bucket[/object or prefix/]")
    select_opts(p)
    p.add_argument("--keep-md", action="store_true", help="whole bucket: keep its metadata")
    yes_opt(p)
    wait_opts(p)


def _archive(ap: argparse.ArgumentParser) -> None:
    g = group(ap, "archive", "shards (.tar, .tgz, .zip): create, list, read",
              ["ais archive put ./dir ais://data/shard-0001.tar", "ais archive ls ais://data/shard-0001.tar",
               "ais archive get ais://data/shard-0001.tar out.txt --archpath dir/file.txt"])
    p = leaf(g, "put", archive.cmd_put, "archive local files, or objects of a bucket (a job), into a shard",
             ["ais archive put ./dir ./notes.txt ais://data/shard.tar",
              "ais archive put ais://data ais://shards/train-0001.tar --prefix train/ --wait",
              "ais archive put ais://data ais://data/sel.zip --list a.txt,b.txt --wait"])
    p.add_argument("src", nargs="+", help="local files and directories, or one provider://bucket[/prefix/]")
    p.add_argument("dst", help="provider://bucket/shard.{tar,tgz,tar.gz,zip}")
    select_opts(p)
    p.add_argument("--mime", default="", help="archive format when the name does not tell (.tar, .tgz, .zip)")
    p.add_argument("--include-src-bck", action="store_true", help="bucket: prefix member names with the bucket")
    p.add_argument("--include-dir", action="store_true", help="local: keep the directory's own name in members")
    p.add_argument("--append", action="store_true", help="bucket: append to the shard if it exists")
    p.add_argument("--cont-on-err", action="store_true", help="bucket: skip objects that fail")
    wait_opts(p)
    p = leaf(g, "ls", archive.cmd_ls, "list the files inside shards",
             ["ais archive ls ais://data/shard.tar", "ais archive ls ais://data --all --json"])
    p.add_argument("name", help="provider://bucket[/shard or prefix]")
    p.add_argument("--all", action="store_true", help="list plain objects too")
    out_opts(p)
    p = leaf(g, "get", archive.cmd_get, "get one file from a shard (--archpath), or extract the whole shard",
             ["ais archive get ais://data/shard.tar out.txt --archpath dir/file.txt",
              "ais archive get ais://data/shard.tar ./extracted"])
    p.add_argument("name", help="provider://bucket/shard")
    p.add_argument("dst", nargs="?", default="", help="a file or - (with --archpath), else a directory")
    p.add_argument("--archpath", help="the file inside the shard")
    p.add_argument("--mime", default="", help="archive format when the name does not tell")

    g = group(ap, "ml", "machine-learning helpers: get-batch", ["ais ml get-batch out.tar ais://data/a ais://data/b"])
    p = leaf(g, "get-batch", archive.cmd_get_batch, "fetch many objects (or files in shards) as one archive",
             ["ais ml get-batch batch.tar ais://data/a.jpg ais://data/b.jpg",
              "ais ml get-batch batch.zip --spec batch.json --cont-on-err",
              "ais ml get-batch - ais://data/shard.tar --archpath 0001.jpg | tar t"])
    p.add_argument("out", help="the archive to write (.tar, .tgz, .zip), or - for stdout")
    p.add_argument("objects", nargs="*", metavar="OBJECT", help="provider://bucket/object ...")
    p.add_argument("--spec", help="JSON list of names or {\"obj\", \"archpath\", \"start\", \"length\"} (- for stdin)")
    p.add_argument("--archpath", help="read this file from each named shard")
    p.add_argument("--mime", default="", help="output format (default: from OUT's extension)")
    p.add_argument("--cont-on-err", action="store_true", help="skip missing entries instead of failing")
    p.add_argument("--only-obj-name", action="store_true", help="name members by object name only")


def _etl(ap: argparse.ArgumentParser) -> None:
    g = group(ap, "etl", "transformers next to the data: init, ls, show, logs, stop, start, rm, object, bucket",
              ["ais etl init --name md5 --image aistorage/transformer_md5", "ais etl ls",
               "ais etl object md5 ais://data/a.txt -", "ais etl bucket md5 ais://data ais://data-md5 --wait"])
    p = leaf(g, "init", etl.cmd_init, "start a transformer on every target",
             ["ais etl init --name md5 --image aistorage/transformer_md5",
              "ais etl init --name echo --image aistorage/transformer_echo --comm-type hpull",
              "ais etl init --spec etl.json"])
    p.add_argument("--name", help="6-32 characters: lower-case letters, digits, '-'")
    p.add_argument("--image", help="container image (or an image the cluster maps to a local command)")
    p.add_argument("--command", help="the transformer's command line")
    p.add_argument("--comm-type", default="hpush://", help="hpush, hpull or ws (default hpush)")
    p.add_argument("--init-timeout", default="5m")
    p.add_argument("--obj-timeout", default="45s")
    p.add_argument("--direct-put", action="store_true", help="the transformer writes results to targets itself")
    p.add_argument("--env", nargs="*", metavar="NAME=VALUE", help="environment of the transformer")
    p.add_argument("--spec", help="a JSON init message (ETLSpecMsg) instead of the options")
    p = leaf(g, "ls", etl.cmd_ls, "list ETLs", ["ais etl ls", "ais etl ls --json"])
    out_opts(p)
    p = leaf(g, "show", etl.cmd_show, "show an ETL's init message and object errors",
             ["ais etl show md5", "ais etl show md5 --json"])
    p.add_argument("name")
    out_opts(p)
    p = leaf(g, "logs", etl.cmd_logs, "print an ETL's logs (every target, or one)",
             ["ais etl logs md5", "ais etl logs md5 TARGET_ID"])
    p.add_argument("name")
    p.add_argument("target", nargs="?", default="")
    for name, fn, help in (("stop", etl.cmd_stop, "stop ETLs (keep their definitions)"),
                           ("start", etl.cmd_start, "start stopped ETLs again")):
        p = leaf(g, name, fn, help, [f"ais etl {name} md5", f"ais etl {name} md5 echo-etl"])
        p.add_argument("names", nargs="+", metavar="NAME")
    p = leaf(g, "rm", etl.cmd_rm, "remove ETLs", ["ais etl rm md5", "ais etl rm md5 echo-etl -y"])
    p.add_argument("names", nargs="+", metavar="NAME")
    yes_opt(p)
    p = leaf(g, "object", etl.cmd_object, "transform one object to a file or stdout",
             ["ais etl object md5 ais://data/a.txt -", "ais etl object md5 ais://data/a.txt a.md5"])
    p.add_argument("name")
    p.add_argument("src", help="provider://bucket/object")
    p.add_argument("dst", help="a file, or - for stdout")
    p.add_argument("--archpath", help="a file inside the shard")
    p = leaf(g, "bucket", etl.cmd_bucket, "transform a bucket (or selected objects) into another bucket (a job)",
             ["ais etl bucket md5 ais://data ais://data-md5 --wait",
              "ais etl bucket md5 ais://data ais://out --prefix train/ --ext '{\"jpg\": \"md5\"}'",
              "ais etl bucket md5 ais://data ais://out --template 'x-{00..99}' --wait"])
    p.add_argument("name")
    p.add_argument("src")
    p.add_argument("dst")
    select_opts(p)
    p.add_argument("--ext", help="rename extensions, JSON: '{\"jpg\": \"png\"}'")
    p.add_argument("--dry-run", action="store_true", help="transform without storing the results")
    p.add_argument("--cont-on-err", action="store_true", help="skip objects that fail")
    wait_opts(p)


def _job(ap: argparse.ArgumentParser) -> None:
    g = group(ap, "job", "cluster-wide jobs: ls, show, wait, stop",
              ["ais job ls", "ais job show JOB_ID", "ais job wait JOB_ID --timeout 60", "ais job stop JOB_ID"])
    p = leaf(g, "ls", jobs.cmd_ls, "list jobs", ["ais job ls", "ais job ls --kind copy-bck --active --json"])
    p.add_argument("--kind", help="only jobs of this kind (e.g. prefetch-listrange, copy-bck)")
    p.add_argument("--active", action="store_true", help="only running jobs")
    out_opts(p)
    p = leaf(g, "show", jobs.cmd_show, "show a job, target by target", ["ais job show JOB_ID", "ais job show JOB_ID --json"])
    p.add_argument("id", metavar="JOB_ID")
    p.set_defaults(kind="", active=False)
    out_opts(p)
    p = leaf(g, "wait", jobs.cmd_wait, "wait for a job to finish (progress on a terminal)",
             ["ais job wait JOB_ID", "ais job wait JOB_ID --timeout 30"])
    p.add_argument("id", metavar="JOB_ID")
    p.add_argument("--timeout", type=float, default=600.0, metavar="SECONDS")
    p = leaf(g, "stop", jobs.cmd_stop, "abort a job on every target", ["ais job stop JOB_ID"])
    p.add_argument("id", metavar="JOB_ID")


def _show(ap: argparse.ArgumentParser) -> None:
    g = group(ap, "show", "show the cluster, its performance, storage, config and jobs",
              ["ais show cluster", "ais show performance --refresh 2 --count 5", "ais show storage",
               "ais show config cluster", "ais show job"])
    p = leaf(g, "cluster", show.cmd_cluster, "nodes, their state, capacity and load",
             ["ais show cluster", "ais show cluster target", "ais show cluster --json"])
    p.add_argument("which", nargs="?", default="", help="proxy, target, or a node ID")
    out_opts(p)
    p = leaf(g, "performance", show.cmd_performance, "load of every target: CPU, memory, disks, network",
             ["ais show performance", "ais show performance --refresh 1 --count 10", "ais show performance --json"])
    p.add_argument("--refresh", type=float, default=2.0, metavar="SECONDS", help="interval between reports")
    p.add_argument("--count", type=int, default=1, help="number of reports (default 1)")
    out_opts(p)
    p = leaf(g, "storage", show.cmd_storage, "mountpaths of every target: used, free, disk load",
             ["ais show storage", "ais show storage --json"])
    out_opts(p)
    p = leaf(g, "config", config.cmd_show_config, "cluster, node or CLI configuration",
             ["ais show config cluster", "ais show config cluster timeouts", "ais show config NODE_ID --json",
              "ais show config cli"])
    p.add_argument("target", metavar="cluster|NODE_ID|cli")
    p.add_argument("section", nargs="?", default="", help="a section or key, e.g. timeouts")
    out_opts(p)
    p = leaf(g, "job", jobs.cmd_show, "jobs (all, or one in detail)", ["ais show job", "ais show job JOB_ID --json"])
    p.add_argument("id", nargs="?", default="", metavar="JOB_ID")
    p.add_argument("--kind", help="only jobs of this kind")
    p.add_argument("--active", action="store_true", help="only running jobs")
    out_opts(p)


def _cluster(ap: argparse.ArgumentParser) -> None:
    g = group(ap, "cluster", "the local cluster (up, down, status) and membership (add, rm, set-primary, "
                             "maintenance)",
              ["ais cluster up --targets 3", "ais cluster status", "ais cluster down --purge -y",
               "ais cluster maintenance start TARGET_ID"])
    p = leaf(g, "up", cmd_cluster_up, "start a local cluster in the background",
             ["ais cluster up", "ais cluster up --targets 3 --mountpaths 2 --dir ~/.ais/cluster"], remote=False)
    p.add_argument("--proxies", type=int, default=1)
    p.add_argument("--targets", type=int, default=3)
    p.add_argument("--mountpaths", type=int, default=2, help="mountpaths (directories) per target")
    p.add_argument("--dir", default=localcluster.DEFAULT_DIR, help="data and state directory")
    p.add_argument("--port", type=int, default=localcluster.DEFAULT_PORT, help="first port; each node takes two")
    p.add_argument("--no-fsync", action="store_true", help="do not fsync objects (faster, less durable)")
    p.add_argument("--https", action="store_true",
                   help="TLS on every listener, with a CA and certificate made in DIR/tls (first start only)")
    p = leaf(g, "down", cmd_cluster_down, "stop the local cluster",
             ["ais cluster down", "ais cluster down --purge --yes"], remote=False)
    p.add_argument("--dir", default=localcluster.DEFAULT_DIR)
    p.add_argument("--purge", action="store_true", help="also delete all data")
    yes_opt(p)
    p = leaf(g, "status", cmd_cluster_status, "show the nodes of the local cluster",
             ["ais cluster status", "ais cluster status --json"], remote=False)
    p.add_argument("--dir", default=localcluster.DEFAULT_DIR)
    p.add_argument("--json", action="store_true")
    p = leaf(g, "add", nodes.cmd_add, "add a running node (e.g. one in standby) to the cluster",
             ["ais cluster add http://10.0.0.5:51080 --role target", "ais cluster add 10.0.0.5:51080 --wait"])
    p.add_argument("url", help="the node's public URL (http(s)://HOST:PORT, or HOST:PORT)")
    p.add_argument("--role", choices=["proxy", "target"], default="", help="expected role (checked)")
    _node_opts(p, confirm=False)
    p = leaf(g, "rm", nodes.cmd_rm, "decommission a node: rebalance its data away, remove it from the cluster "
                                    "map, stop it",
             ["ais cluster rm t[TARGET_ID] -y --wait", "ais cluster rm TARGET_ID --rm-user-data -y",
              "ais cluster rm TARGET_ID --no-shutdown -y     # the node stays up, in standby",
              "ais cluster rm TARGET_ID --unsafe -y          # at once, without rebalance"])
    p.add_argument("node", metavar="NODE_ID")
    p.add_argument("--no-rebalance", action="store_true", help="do not move the node's data first")
    p.add_argument("--rm-user-data", action="store_true", help="also delete the node's data (its mountpaths)")
    p.add_argument("--keep-initial-config", action="store_true", help="keep the node's own config changes")
    p.add_argument("--no-shutdown", action="store_true",
                   help="leave the node running, in standby (re-add it with 'ais cluster add')")
    p.add_argument("--unsafe", action="store_true",
                   help="drop the node from the cluster map at once, without rebalance or cleanup")
    _node_opts(p)
    p = leaf(g, "shutdown", nodes.cmd_shutdown, "shut a node down: maintenance, rebalance, then its process exits; "
                                                "it keeps its data and rejoins when restarted",
             ["ais cluster shutdown t[TARGET_ID] -y --wait", "ais cluster shutdown PROXY_ID -y"])
    p.add_argument("node", metavar="NODE_ID")
    p.add_argument("--no-rebalance", action="store_true", help="do not move the node's data first")
    _node_opts(p)
    p = leaf(g, "set-primary", show.cmd_set_primary, "make another proxy the primary", ["ais cluster set-primary PROXY_ID"])
    p.add_argument("node", metavar="PROXY_ID")
    mg = group(g, "maintenance", "put a node in maintenance, or take it out",
               ["ais cluster maintenance start TARGET_ID", "ais cluster maintenance stop TARGET_ID"])
    for name in ("start", "stop"):
        p = leaf(mg, name, nodes.cmd_maintenance, f"{name} maintenance of a node",
                 [f"ais cluster maintenance {name} TARGET_ID"])
        p.add_argument("node", metavar="NODE_ID")
        p.add_argument("--no-rebalance", action="store_true", help="do not rebalance data")
        _node_opts(p, confirm=False)
        p.set_defaults(cmd=name)


def _node_opts(p: argparse.ArgumentParser, confirm: bool = True) -> None:
    """--json, --wait/--timeout (and --yes) of the membership commands."""
    p.add_argument("--json", "-j", action="store_true", help="print JSON")
    p.add_argument("--wait", action="store_true", help="wait for the rebalance (and the node leaving or exiting)")
    p.add_argument("--timeout", type=float, default=600.0, metavar="SECONDS", help="how long --wait waits")
    if confirm:
        yes_opt(p)


def _config(ap: argparse.ArgumentParser) -> None:
    g = group(ap, "config", "show and change cluster, node and CLI configuration",
              ["ais config cluster show timeouts", "ais config cluster set timeouts.control_s=60",
               "ais config node NODE_ID show", "ais config cli set cluster.url=http://10.0.0.1:8080"])
    cg = group(g, "cluster", "the cluster's configuration",
               ["ais config cluster show", "ais config cluster set load.pace_jobs=false"])
    p = leaf(cg, "show", config.cmd_show, "show the cluster config (all, or a section)",
             ["ais config cluster show", "ais config cluster show timeouts --json"])
    p.add_argument("section", nargs="?", default="")
    p.set_defaults(scope="cluster", node="")
    out_opts(p)
    p = leaf(cg, "set", config.cmd_set, "change the cluster config",
             ["ais config cluster set timeouts.control_s=60 load.pace_jobs=false"])
    p.add_argument("pairs", nargs="+", metavar="KEY=VALUE")
    p.set_defaults(scope="cluster", node="")
    ng = group(g, "node", "one node's configuration",
               ["ais config node NODE_ID show", "ais config node NODE_ID set log.level=debug"])
    ng.add_argument("node", metavar="NODE_ID")
    p = leaf(ng, "show", config.cmd_show, "show a node's config", ["ais config node NODE_ID show net"])
    p.add_argument("section", nargs="?", default="")
    p.set_defaults(scope="node")
    out_opts(p)
    p = leaf(ng, "set", config.cmd_set, "change a node's config", ["ais config node NODE_ID set log.level=debug"])
    p.add_argument("pairs", nargs="+", metavar="KEY=VALUE")
    p.set_defaults(scope="node")
    lg = group(g, "cli", "this CLI's config file", ["ais config cli show", "ais config cli set cluster.url=URL"])
    p = leaf(lg, "show", config.cmd_cli_show, "show the CLI config", ["ais config cli show"], remote=False)
    out_opts(p)
    p = leaf(lg, "set", config.cmd_cli_set, "change the CLI config",
             ["ais config cli set cluster.url=http://10.0.0.1:8080 timeout.control_s=30"], remote=False)
    p.add_argument("pairs", nargs="+", metavar="KEY=VALUE")


def _storage(ap: argparse.ArgumentParser) -> None:
    g = group(ap, "storage", "targets' storage: mountpaths", ["ais storage mountpath ls"])
    mg = group(g, "mountpath", "list, attach, detach, enable and disable mountpaths",
               ["ais storage mountpath ls", "ais storage mountpath detach TARGET_ID /data/3 --wait"])
    mountpaths.add_commands(mg, leaf, out_opts)


def _s3(ap: argparse.ArgumentParser) -> None:
    g = group(ap, "s3", "S3 front end: access keys", ["ais s3 keys add", "ais s3 keys ls"])
    kg = group(g, "keys", "manage S3 access keys", ["ais s3 keys add", "ais s3 keys rm AKTRAINING0000000001"])
    p = leaf(kg, "add", s3keys.cmd_add, "add an access key (generated unless given)",
             ["ais s3 keys add", "ais s3 keys add --access-key AKTRAINING0000000001"])
    p.add_argument("--access-key")
    p.add_argument("--secret-key")
    p = leaf(kg, "ls", s3keys.cmd_ls, "list access keys (never their secrets)", ["ais s3 keys ls --json"])
    out_opts(p)
    p = leaf(kg, "rm", s3keys.cmd_rm, "remove an access key", ["ais s3 keys rm AKTRAINING0000000001"])
    p.add_argument("key")


# --- running a command --------------------------------------------------------------------------

def error_line(exc: BaseException, args: argparse.Namespace) -> str:
    """The one line a failure prints (no traceback)."""
    if isinstance(exc, ConnectError):
        return f"cannot reach the cluster at {endpoint(args)} (set AIS_ENDPOINT or --endpoint): {exc.message}"
    if isinstance(exc, TransportError):
        return f"{exc.message}"
    if isinstance(exc, StatusError):
        if exc.status == 501:
            return f"not supported by this cluster: {exc.message}"
        return exc.message or f"error {exc.status}"
    if isinstance(exc, ClientError):
        return exc.message
    return str(exc)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        code = args.fn(args)
    except (localcluster.ClusterError, CommandError, ClientError) as exc:
        print(f"ais: {error_line(exc, args)}".splitlines()[0], file=sys.stderr)
        code = 1
    except BrokenPipeError:    # `ais ... | head`: the reader left; not an error
        code = 0
    except OSError as exc:     # local files: no such file, permission denied, disk full
        print(f"ais: {exc}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        print("", file=sys.stderr)
        code = 130
    finally:
        close_clients()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        code = code or 0
    # stdout may be a closed pipe: make the interpreter's final flush harmless
    if _closed_pipe():
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(code)


def _closed_pipe() -> bool:
    try:
        sys.stdout.flush()
        return False
    except (BrokenPipeError, ValueError):
        return True


if __name__ == "__main__":
    main()
