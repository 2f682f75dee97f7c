"""`ais put`, `ais get`, `ais object cat|rm|mv|cp|show`, `ais prefetch`, `ais evict`."""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import sys
import time
from typing import Any, Callable, Iterator, Sequence
from urllib.parse import quote

from ais.cli import buckets, jobs, render
from ais.cli.common import CommandError, client, confirm, object_arg, split_name
from ais.client import Client, ObjectProps
from ais.names import Bucket

CHUNK = 1 << 20


# --- selections (--list, --template, --prefix) ------------------------------------------------

def selection(a: argparse.Namespace, obj: str) -> dict[str, Any]:
    """The objects a multi-object command works on: `--list`, `--template`, `--prefix`, or the
    object (or prefix ending in '/') named in the argument; {} means the whole bucket."""
    if getattr(a, "list", None):
        return {"objnames": [n.strip() for n in a.list.split(",") if n.strip()]}
    if getattr(a, "template", None):
        return {"template": a.template}
    if getattr(a, "prefix", None):
        return {"template": a.prefix}
    if obj:
        return {"template": obj} if obj.endswith("/") else {"objnames": [obj]}
    return {}


def describe(sel: dict[str, Any]) -> str:
    if "objnames" in sel:
        n = len(sel["objnames"])
        return sel["objnames"][0] if n == 1 else f"{n} objects"
    if "template" in sel:
        return f"objects matching {sel['template']!r}"
    return "all objects"


def bucket_path(bck: Bucket) -> tuple[str, list[tuple[str, str]]]:
    params = [("provider", bck.provider)]
    if not bck.namespace.is_global:
        params.append(("namespace", bck.namespace.uname))
    return f"/v1/buckets/{quote(bck.name, safe='')}", params


def object_path(bck: Bucket, obj: str) -> tuple[str, list[tuple[str, str]]]:
    path, params = bucket_path(bck)
    return f"/v1/objects/{quote(bck.name, safe='')}/{quote(obj, safe='/')}", params


def bucket_action(c: Client, method: str, bck: Bucket, action: str, value: Any,
                  extra: Sequence[tuple[str, str]] = ()) -> str:
    path, params = bucket_path(bck)
    return c.request(method, path, params=params + list(extra),
                     body={"action": action, "name": "", "value": value}).text


# --- put --------------------------------------------------------------------------------------

def _walk(root: str) -> Iterator[str]:
    for d, dirs, files in os.walk(root):
        dirs.sort()
        for f in sorted(files):
            yield os.path.join(d, f)


def run_many(items: Sequence[Any], work: Callable[[Any], int], concurrency: int, what: str,
             fail_fast: bool = True) -> tuple[int, int, list[str]]:
    """Run `work(item) -> bytes` over items on `concurrency` threads with a progress bar;
    (count, bytes, errors)."""
    count = nbytes = 0
    errs: list[str] = []
    with render.Progress(what, len(items)) as bar, \
            concurrent.futures.ThreadPoolExecutor(max(1, concurrency)) as pool:
        futures = {pool.submit(work, it): it for it in items}
        try:
            for fut in concurrent.futures.as_completed(futures):
                try:
                    n = fut.result()
                except Exception as exc:   # reported per item, then as the command's error
                    errs.append(f"{futures[fut]}: {getattr(exc, 'message', None) or exc}")
                    if fail_fast:
                        raise
                    continue
                count += 1
                nbytes += n
                bar.update(1, n)
        except BaseException:
            for f in futures:
                f.cancel()
            raise
    return count, nbytes, errs


def cmd_put(a: argparse.Namespace) -> int:
    c = client(a)
    bck, obj = split_name(a.dst)
    started = time.monotonic()
    if a.src == "-":
        if not obj or obj.endswith("/"):
            raise CommandError("put from stdin needs an object name: ais put - provider://bucket/object")
        stdin = sys.stdin.buffer
        sent = [0]

        def chunks() -> Iterator[bytes]:
            while chunk := stdin.read(CHUNK):
                sent[0] += len(chunk)
                yield chunk
        c.put_object(bck, obj, chunks())
        print(f'PUT (stdin) => "{bck.object_cname(obj)}" ({render.human_size(sent[0])})')
        return 0
    src = os.path.expanduser(a.src)
    if os.path.isdir(src):
        if not a.recursive:
            raise CommandError(f"{a.src!r} is a directory: pass -r (--recursive) to put its files")
        prefix = obj if not obj or obj.endswith("/") else obj + "/"
        files = list(_walk(src))
        if not files:
            raise CommandError(f"{a.src!r} has no files")
        pairs = [(f, prefix + os.path.relpath(f, src).replace(os.sep, "/")) for f in files]
        if a.dry_run:
            for f, name in pairs:
                print(f'[dry-run] PUT "{f}" => "{bck.object_cname(name)}"')
            return 0

        def put(pair: tuple[str, str]) -> int:
            return c.put_file(bck, pair[1], pair[0]).size
        count, nbytes, _ = run_many(pairs, put, a.concurrency, f"PUT {bck.cname}")
        elapsed = time.monotonic() - started
        print(f'PUT {count} files ({render.human_size(nbytes)}) => "{bck.object_cname(prefix)}" '
              f"in {render.human_duration(elapsed)}")
        return 0
    if not os.path.isfile(src):
        raise CommandError(f"{a.src!r}: no such file or directory")
    name = obj + os.path.basename(src) if not obj or obj.endswith("/") else obj
    if a.dry_run:
        print(f'[dry-run] PUT "{a.src}" => "{bck.object_cname(name)}"')
        return 0
    props = c.put_file(bck, name, src)
    print(f'PUT "{a.src}" => "{bck.object_cname(name)}" ({render.human_size(props.size)})')
    return 0


# --- get --------------------------------------------------------------------------------------

def _safe_join(root: str, name: str) -> str:
    path = os.path.normpath(os.path.join(root, name))
    if os.path.commonpath([os.path.abspath(root), os.path.abspath(path)]) != os.path.abspath(root):
        raise CommandError(f"object name {name!r} would be written outside {root!r}")
    return path


def download(c: Client, bck: Bucket, obj: str, dst: str, **read: Any) -> int:
    """Stream one object (or a file inside it, or its transform) to `dst` ('-': stdout); its size."""
    reader = c.open_object(bck, obj, **read)
    n = 0
    try:
        if dst == "-":
            out = sys.stdout.buffer
            for chunk in reader.iter_chunks():
                out.write(chunk)
                n += len(chunk)
            out.flush()
            return n
        d = os.path.dirname(dst)
        if d:
            os.makedirs(d, exist_ok=True)
        tmp = f"{dst}.ais-part.{os.getpid()}"
        try:
            with open(tmp, "wb") as f:
                for chunk in reader.iter_chunks():
                    f.write(chunk)
                    n += len(chunk)
            os.replace(tmp, dst)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return n
    finally:
        reader.close()


def _read_opts(a: argparse.Namespace) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    if getattr(a, "archpath", None):
        opts["archpath"] = a.archpath
    if getattr(a, "etl", None):
        opts["etl_name"] = a.etl
    if getattr(a, "latest", False):
        opts["latest"] = True
    if getattr(a, "offset", 0) or getattr(a, "length", None):
        opts["offset"] = a.offset or 0
        opts["length"] = a.length
    return opts


def cmd_get(a: argparse.Namespace) -> int:
    c = client(a)
    bck, obj = split_name(a.src)
    if a.prefix is not None or not obj or obj.endswith("/"):
        return _get_many(a, c, bck, a.prefix if a.prefix is not None else obj)
    inner = a.archpath or ""
    dst = a.dst or os.path.basename(inner or obj)
    if dst != "-" and os.path.isdir(dst):
        dst = os.path.join(dst, os.path.basename(inner or obj))
    n = download(c, bck, obj, dst, **_read_opts(a))
    if dst != "-":
        src = bck.object_cname(obj) + (f" [{inner}]" if inner else "") + (f" (etl {a.etl})" if a.etl else "")
        print(f'GET "{src}" => "{dst}" ({render.human_size(n)})')
    return 0


def _get_many(a: argparse.Namespace, c: Client, bck: Bucket, prefix: str) -> int:
    if a.archpath:
        raise CommandError("--archpath reads one shard: name the object (provider://bucket/shard.tar)")
    root = a.dst or "."
    if root == "-":
        raise CommandError("cannot write many objects to stdout: give a directory")
    names = [e.name for e in c.list_objects(bck, prefix=prefix, props="name,size") if not e.is_dir]
    if not names:
        raise CommandError(f"no objects in {bck.cname}" + (f" with prefix {prefix!r}" if prefix else ""))
    opts = _read_opts(a)
    started = time.monotonic()

    def get(name: str) -> int:
        return download(c, bck, name, _safe_join(root, name), **opts)
    count, nbytes, _ = run_many(names, get, a.concurrency, f"GET {bck.cname}")
    print(f'GET {count} objects ({render.human_size(nbytes)}) from "{bck.object_cname(prefix) if prefix else bck.cname}"'
          f' => "{root}" in {render.human_duration(time.monotonic() - started)}')
    return 0


# --- object cat | rm | mv | cp | show -----------------------------------------------------------

def cmd_cat(a: argparse.Namespace) -> int:
    bck, obj = object_arg(a.name)
    download(client(a), bck, obj, "-", **_read_opts(a))
    return 0


def cmd_rm(a: argparse.Namespace) -> int:
    c = client(a)
    multi = a.list or a.template or a.prefix is not None
    if not multi:
        targets = [object_arg(n) for n in a.names]
        for bck, obj in targets:
            c.delete_object(bck, obj)
            print(f'deleted "{bck.object_cname(obj)}"')
        return 0
    if len(a.names) != 1:
        raise CommandError("with --list, --template or --prefix, name one bucket")
    bck, obj = split_name(a.names[0])
    sel = selection(a, obj)
    confirm(a, f"Delete {describe(sel)} from {bck.cname}?")
    job_id = bucket_action(c, "DELETE", bck, "delete-listrange", sel)
    return jobs.started(a, c, job_id, f"delete {describe(sel)} from {bck.cname}")


def cmd_mv(a: argparse.Namespace) -> int:
    c = client(a)
    bck, obj = object_arg(a.src)
    new_bck, new = split_name(a.dst) if "://" in a.dst else (bck, a.dst)
    if new_bck != bck:
        raise CommandError("mv renames within a bucket; to copy across buckets use 'ais object cp'")
    if not bck.is_ais:
        raise CommandError(f"rename is supported for ais:// buckets only, not {bck.cname}")
    path, params = object_path(bck, obj)
    c.request("POST", path, params=params, body={"action": "rename-obj", "name": new, "value": None})
    print(f'"{bck.object_cname(obj)}" => "{bck.object_cname(new)}"')
    return 0


def cmd_cp(a: argparse.Namespace) -> int:
    c = client(a)
    bck, obj = object_arg(a.src)
    dst, dst_obj = split_name(a.dst)
    dst_obj = dst_obj or obj
    if dst_obj.endswith("/"):
        dst_obj += os.path.basename(obj)
    path, params = object_path(bck, obj)
    extra = [("object_to", dst.object_uname(dst_obj))]
    if a.etl:
        extra.append(("etl_name", a.etl))
    c.request("PUT", path, params=params + extra)
    print(f'COPY "{bck.object_cname(obj)}" => "{dst.object_cname(dst_obj)}"' + (f" (etl {a.etl})" if a.etl else ""))
    return 0


def props_rows(props: ObjectProps) -> list[tuple[str, Any]]:
    atime = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(props.atime_ns / 1e9)) if props.atime_ns else ""
    return [("size", render.human_size(props.size)), ("checksum", f"{props.checksum_type} {props.checksum_value}"
                                                      if props.checksum_value else ""),
            ("atime", atime), ("version", props.version), ("etag", props.etag),
            ("cached", "yes" if props.present else "no"), ("location", props.location),
            ("custom", ", ".join(f"{k}={v}" for k, v in sorted(props.custom.items())))]


def cmd_show(a: argparse.Namespace) -> int:
    bck, obj = object_arg(a.name)
    props = client(a).head_object(bck, obj)
    if a.json:
        render.print_json({"name": bck.object_cname(obj), "size": props.size, "checksum_type": props.checksum_type,
                           "checksum_value": props.checksum_value, "atime_ns": props.atime_ns,
                           "version": props.version, "etag": props.etag, "present": props.present,
                           "location": props.location, "custom": dict(props.custom)})
        return 0
    print(render.table(["PROPERTY", "VALUE"], [("name", bck.object_cname(obj))] + props_rows(props),
                       no_headers=a.no_headers))
    return 0


# --- prefetch, evict --------------------------------------------------------------------------------

def cmd_prefetch(a: argparse.Namespace) -> int:
    c = client(a)
    bck, obj = split_name(a.name)
    if bck.is_ais:
        raise CommandError(f"prefetch needs a remote bucket (s3://, gs://, az://), and {bck.cname} is not one")
    sel = selection(a, obj)
    if a.latest:
        sel["latest-ver"] = True
    total = len(sel["objnames"]) if "objnames" in sel else None
    job_id = bucket_action(c, "POST", bck, "prefetch-listrange", sel)
    return jobs.started(a, c, job_id, f"prefetch {describe(sel)} from {bck.cname}", total)


def cmd_evict(a: argparse.Namespace) -> int:
    c = client(a)
    bck, obj = split_name(a.name)
    if bck.is_ais:
        raise CommandError(f"cannot evict from {bck.cname}: only remote buckets (s3://, gs://, az://) are evicted")
    if not obj and not (a.list or a.template or a.prefix):
        a.buckets = [a.name]
        return buckets.cmd_evict(a)
    sel = selection(a, obj)
    job_id = bucket_action(c, "DELETE", bck, "evict-listrange", sel)
    return jobs.started(a, c, job_id, f"evict {describe(sel)} from {bck.cname}",
                        len(sel["objnames"]) if "objnames" in sel else None)
