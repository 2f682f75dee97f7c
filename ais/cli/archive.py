"""`ais archive put|ls|get` (shards: .tar, .tgz/.tar.gz, .zip) and `ais ml get-batch`."""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tarfile
import tempfile
import time
import zipfile
from typing import Any, BinaryIO

from ais.cli import jobs, render
from ais.cli.common import CommandError, client, object_arg, split_name
from ais.cli.objects import _safe_join, _walk, bucket_action, describe, download, selection
from ais.client import LS_ARCH_DIR, BatchItem

_MIMES = (".tar.gz", ".tgz", ".tar", ".zip")


def mime_of(name: str, given: str = "") -> str:
    if given:
        m = given if given.startswith(".") else "." + given
        if m not in _MIMES:
            raise CommandError(f"unsupported archive format {given!r}: expected one of {', '.join(_MIMES)}")
        return m
    for m in _MIMES:
        if name.endswith(m):
            return m
    raise CommandError(f"{name!r}: cannot tell the archive format; name it .tar, .tgz, .tar.gz or .zip "
                       "(or pass --mime)")


class ArchiveWriter:
    """Writes members into a local .tar, .tgz or .zip."""

    def __init__(self, f: BinaryIO, mime: str) -> None:
        self.zip: zipfile.ZipFile | None = None
        self.tar: tarfile.TarFile | None = None
        if mime == ".zip":
            self.zip = zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED)
        else:
            self.tar = tarfile.open(fileobj=f, mode="w|gz" if mime in (".tgz", ".tar.gz") else "w|",
                                    format=tarfile.PAX_FORMAT)

    def add_bytes(self, name: str, data: bytes) -> None:
        if self.zip is not None:
            self.zip.writestr(name, data)
        else:
            assert self.tar is not None
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = int(time.time())
            self.tar.addfile(info, io.BytesIO(data))

    def add_file(self, name: str, path: str) -> None:
        if self.zip is not None:
            self.zip.write(path, name)
        else:
            assert self.tar is not None
            self.tar.add(path, name, recursive=False)

    def close(self) -> None:
        if self.zip is not None:
            self.zip.close()
        if self.tar is not None:
            self.tar.close()


# --- archive put --------------------------------------------------------------------------------

def cmd_put(a: argparse.Namespace) -> int:
    c = client(a)
    dst, shard = object_arg(a.dst)
    mime = mime_of(shard, a.mime)
    if "://" in a.src[0] and len(a.src) == 1:
        # server side: objects of a bucket into a shard, built by the shard's target
        src, obj = split_name(a.src[0])
        sel = selection(a, obj)
        value = {"archname": shard, "mime": mime, "tobck": dst.to_wire(), "isbn": a.include_src_bck,
                 "aate": a.append, "coer": a.cont_on_err, **sel}
        job_id = bucket_action(c, "PUT", src, "archive", value)
        return jobs.started(a, c, job_id, f"archive {describe(sel)} of {src.cname} => {dst.object_cname(shard)}")
    # client side: local files and directories into one shard
    files: list[tuple[str, str]] = []
    for path in a.src:
        if "://" in path:
            raise CommandError(f"{path!r}: archive either one bucket (server side) or local files, not both")
        if os.path.isdir(path):
            files += [(f, os.path.relpath(f, os.path.dirname(os.path.abspath(path)) if a.include_dir else path)
                       .replace(os.sep, "/")) for f in _walk(path)]
        elif os.path.isfile(path):
            files.append((path, os.path.basename(path)))
        else:
            raise CommandError(f"{path!r}: no such file or directory")
    if not files:
        raise CommandError("nothing to archive")
    with tempfile.TemporaryFile() as tmp:
        w = ArchiveWriter(tmp, mime)
        with render.Progress(f"archiving into {shard}", len(files), unit="files") as bar:
            for path, name in files:
                w.add_file(name, path)
                bar.update(1, os.path.getsize(path))
        w.close()
        size = tmp.tell()
        tmp.seek(0)
        c.put_object(dst, shard, iter(lambda: tmp.read(1 << 20), b""), size=size)
    print(f'ARCHIVE {len(files)} files => "{dst.object_cname(shard)}" ({render.human_size(size)})')
    return 0


# --- archive ls, get ---------------------------------------------------------------------------

def cmd_ls(a: argparse.Namespace) -> int:
    c = client(a)
    bck, obj = split_name(a.name)
    entries = [e for e in c.list_objects(bck, prefix=obj, props="name,size", flags=LS_ARCH_DIR)
               if a.all or e.in_archive or e.name == obj]
    if a.json:
        render.print_json([{"name": e.name, "size": e.size, "in_archive": e.in_archive} for e in entries])
        return 0
    if not entries:
        raise CommandError(f"no shards in {bck.cname}" + (f" named {obj!r}" if obj else ""))
    print(render.table(["NAME", "SIZE"], ([("    " if e.in_archive else "") + e.name, render.human_size(e.size)]
                                          for e in entries), no_headers=a.no_headers, right=["SIZE"]))
    return 0


def cmd_get(a: argparse.Namespace) -> int:
    c = client(a)
    bck, shard = object_arg(a.name)
    if a.archpath:
        dst = a.dst or os.path.basename(a.archpath)
        if dst != "-" and os.path.isdir(dst):
            dst = os.path.join(dst, os.path.basename(a.archpath))
        n = download(c, bck, shard, dst, archpath=a.archpath)
        if dst != "-":
            print(f'GET "{bck.object_cname(shard)}" [{a.archpath}] => "{dst}" ({render.human_size(n)})')
        return 0
    # the whole shard, extracted into a directory
    root = a.dst or os.path.splitext(os.path.basename(shard))[0].removesuffix(".tar")
    mime = mime_of(shard, a.mime)
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = os.path.join(tmpdir, "shard")
        download(c, bck, shard, tmp)
        count = _extract(tmp, mime, root)
    print(f'EXTRACT "{bck.object_cname(shard)}" => "{root}" ({count} files)')
    return 0


def _extract(path: str, mime: str, root: str) -> int:
    os.makedirs(root, exist_ok=True)
    count = 0
    if mime == ".zip":
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                if not info.is_dir():
                    out = _safe_join(root, info.filename)
                    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
                    with z.open(info) as src, open(out, "wb") as f:
                        f.write(src.read())
                    count += 1
        return count
    with tarfile.open(path, "r:*") as t:
        for m in t.getmembers():
            if m.isfile():
                out = _safe_join(root, m.name)
                os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
                member = t.extractfile(m)
                assert member is not None
                with open(out, "wb") as f:
                    f.write(member.read())
                count += 1
    return count


# --- ml get-batch ------------------------------------------------------------------------------

def _batch_items(a: argparse.Namespace) -> list[BatchItem]:
    items: list[BatchItem] = []
    for name in a.objects:
        bck, obj = object_arg(name)
        items.append(BatchItem(obj, bucket=bck, archpath=a.archpath or ""))
    if a.spec:
        try:
            with (sys.stdin if a.spec == "-" else open(a.spec, encoding="utf-8")) as f:
                doc = json.load(f)
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot read the batch spec {a.spec!r}: {exc}") from None
        if not isinstance(doc, list):
            raise CommandError("a batch spec is a JSON list of names or of {\"obj\", \"archpath\", \"start\", \"length\"}")
        for d in doc:
            d = {"obj": d} if isinstance(d, str) else d
            if not isinstance(d, dict) or "obj" not in d:
                raise CommandError(f"batch spec entry {d!r}: expected {{\"obj\": \"provider://bucket/object\", ...}}")
            bck, obj = object_arg(str(d["obj"]))
            try:
                items.append(BatchItem(obj, bucket=bck, archpath=str(d.get("archpath") or ""),
                                       offset=int(d.get("start") or 0), length=int(d.get("length") or 0)))
            except ValueError as exc:
                raise CommandError(f"batch spec entry {d!r}: {exc}") from None
    if not items:
        raise CommandError("name the objects to fetch (provider://bucket/object ...) or pass --spec FILE")
    return items


def cmd_get_batch(a: argparse.Namespace) -> int:
    c = client(a)
    items = _batch_items(a)
    mime = mime_of(a.out, a.mime) if a.out != "-" or a.mime else ".tar"
    out: Any = sys.stdout.buffer if a.out == "-" else open(a.out + ".ais-part", "wb")
    missing: list[str] = []
    count = nbytes = 0
    try:
        w = ArchiveWriter(out, mime)
        with render.Progress("get-batch", len(items)) as bar:
            for e in c.batch_iter(items, mime=mime, continue_on_error=a.cont_on_err):
                if e.error:
                    missing.append(e.error)
                    continue
                name = e.name if a.only_obj_name else f"{e.bucket.name}/{e.name}"
                if e.item.archpath:
                    name += "/" + e.item.archpath
                w.add_bytes(name, e.data)
                count += 1
                nbytes += len(e.data)
                bar.update(1, len(e.data))
        w.close()
    except BaseException:
        if a.out != "-":
            out.close()
            os.unlink(a.out + ".ais-part")
        raise
    if a.out != "-":
        out.close()
        os.replace(a.out + ".ais-part", a.out)
    for m in missing:
        print(f"ais: warning: {m}", file=sys.stderr)
    dest = "stdout" if a.out == "-" else f'"{a.out}"'
    print(f"GET-BATCH {count} of {len(items)} entries ({render.human_size(nbytes)}) => {dest}",
          file=sys.stderr if a.out == "-" else sys.stdout)
    return 0
