"""`ais etl init|ls|show|logs|stop|start|rm|object|bucket`: transformers next to the data."""

from __future__ import annotations

import argparse
import base64
import json
import shlex

from ais.cli import jobs, render
from ais.cli.common import CommandError, bucket_arg, client, confirm, object_arg
from ais.cli.objects import bucket_action, describe, download, selection


def _env(pairs: list[str]) -> dict[str, str]:
    out = {}
    for p in pairs or []:
        k, sep, v = p.partition("=")
        if not sep or not k:
            raise CommandError(f"--env {p!r}: expected NAME=VALUE")
        out[k] = v
    return out


def cmd_init(a: argparse.Namespace) -> int:
    c = client(a)
    if a.spec:
        try:
            with open(a.spec, encoding="utf-8") as f:
                msg = json.load(f)
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot read the ETL spec {a.spec!r}: {exc}") from None
        if a.name:
            msg["name"] = a.name
        job = c.request("PUT", "/v1/etl", body=msg, idempotent=False).text
        name = msg.get("name", "")
    else:
        if not a.name or not a.image:
            raise CommandError("etl init needs --name and --image (or --spec FILE)")
        comm = a.comm_type if "://" in a.comm_type else a.comm_type + "://"
        job = c.etl_init(a.name, a.image, command=shlex.split(a.command or ""), comm_type=comm,
                         init_timeout=a.init_timeout, obj_timeout=a.obj_timeout, direct_put=a.direct_put,
                         env=_env(a.env))
        name = a.name
    print(f"ETL {name!r} is running" + (f" (job {job})" if job else ""))
    return 0


def cmd_ls(a: argparse.Namespace) -> int:
    etls = client(a).etl_list()
    if a.json:
        render.print_json(etls)
    elif not etls:
        print("No ETLs")
    else:
        print(render.table(["NAME", "STAGE", "JOB", "OBJECTS", "IN", "OUT"],
                           ([e.get("id"), e.get("stage"), e.get("xaction_id"), e.get("obj_count", 0),
                             render.human_size(e.get("in_bytes", 0)), render.human_size(e.get("out_bytes", 0))]
                            for e in etls), no_headers=a.no_headers, right=["OBJECTS", "IN", "OUT"]))
    return 0


def cmd_show(a: argparse.Namespace) -> int:
    d = client(a).etl_details(a.name)
    if a.json:
        render.print_json(d)
        return 0
    init = d.get("init_msg") or {}
    rows = [("name", a.name), ("stage", d.get("stage", ""))] + [
        (k, v) for k, v in render.flatten(init) if k != "name"]
    print(render.table(["PROPERTY", "VALUE"], rows, no_headers=a.no_headers))
    errs = d.get("obj_errors") or []
    if errs:
        print(f"\n{len(errs)} object error(s):")
        print(render.table(["OBJECT", "ERROR"], ([e.get("obj_name"), e.get("msg")] for e in errs)))
    return 0


def cmd_logs(a: argparse.Namespace) -> int:
    c = client(a)
    path = f"/v1/etl/{a.name}/logs" + (f"/{a.target}" if a.target else "")
    docs = c.request("GET", path).json() or []
    for d in docs:
        raw = d.get("logs") or ""
        try:
            text = base64.b64decode(raw).decode("utf-8", "replace") if raw else ""
        except ValueError:
            text = str(raw)
        print(f"===== t[{d.get('target_id')}]" + (f" ({d['error']})" if d.get("error") else ""))
        if text:
            print(text.rstrip("\n"))
    return 0


def cmd_stop(a: argparse.Namespace) -> int:
    c = client(a)
    for n in a.names:
        c.etl_stop(n)
        print(f"ETL {n!r} stopped")
    return 0


def cmd_start(a: argparse.Namespace) -> int:
    c = client(a)
    for n in a.names:
        c.etl_start(n)
        print(f"ETL {n!r} started")
    return 0


def cmd_rm(a: argparse.Namespace) -> int:
    c = client(a)
    confirm(a, f"Remove ETL {', '.join(map(repr, a.names))}?")
    for n in a.names:
        c.etl_delete(n)
        print(f"ETL {n!r} removed")
    return 0


def cmd_object(a: argparse.Namespace) -> int:
    """Transform one object: to a local file or stdout (inline GET with `etl_name`)."""
    c = client(a)
    bck, obj = object_arg(a.src)
    n = download(c, bck, obj, a.dst, etl_name=a.name, **({"archpath": a.archpath} if a.archpath else {}))
    if a.dst != "-":
        print(f'ETL {a.name!r}: "{bck.object_cname(obj)}" => "{a.dst}" ({render.human_size(n)})')
    return 0


def cmd_bucket(a: argparse.Namespace) -> int:
    """Transform a bucket (or selected objects) into another bucket: an offline job on every target."""
    c = client(a)
    from ais.cli.common import split_name
    src, obj = split_name(a.src)
    dst = bucket_arg(a.dst)
    value: dict[str, object] = {"id": a.name, "prefix": a.prefix or "", "dry_run": a.dry_run,
                                "coer": a.cont_on_err}
    if a.ext:
        try:
            value["ext"] = json.loads(a.ext)
        except ValueError as exc:
            raise CommandError(f"--ext: expected JSON like '{{\"jpg\": \"png\"}}': {exc}") from None
    sel = selection(a, obj) if (a.list or a.template or obj) else {}
    if sel:
        value.update(sel, tobck=dst.to_wire())
        job_id = bucket_action(c, "POST", src, "etl-listrange", value)
        what = f"ETL {a.name!r}: {describe(sel)} of {src.cname} => {dst.cname}"
    else:
        job_id = bucket_action(c, "POST", src, "etl-bck", value, extra=[("bck_to", dst.uname)])
        what = f"ETL {a.name!r}: {src.cname} => {dst.cname}"
    return jobs.started(a, c, job_id, what)
