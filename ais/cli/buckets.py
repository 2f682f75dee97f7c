"""`ais ls` and `ais bucket create|rm|props show|props set|summary|cp|evict`."""

from __future__ import annotations

import argparse
from typing import Any, Iterable

from ais.cli import jobs, render
from ais.cli.common import (CommandError, bucket_arg, client, confirm, nest, parse_kv, provider_only, split_name)
from ais.client import LS_CACHED, Client, ListEntry
from ais.names import Bucket

# list-objects property -> (column header, how to print the value)
_PROPS = ("name", "size", "checksum", "atime", "version", "cached", "status", "copies", "custom", "location")


def _columns(props: list[str]) -> list[str]:
    return [p.upper() for p in props]


def _value(e: ListEntry, prop: str) -> Any:
    if prop == "name":
        return e.name + ("/" if e.is_dir else "")
    if prop == "size":
        return render.human_size(e.size)
    if prop == "cached":
        return "yes" if e.is_cached else "no"
    if prop == "status":
        return "ok" if e.flags & 0x1F == 0 else f"status {e.flags & 0x1F}"
    return {"checksum": e.checksum, "atime": e.atime, "version": e.version, "copies": e.copies or "",
            "custom": e.custom, "location": e.location}.get(prop, "")


def _entry_json(e: ListEntry, props: list[str]) -> dict[str, Any]:
    d: dict[str, Any] = {"name": e.name}
    for p in props:
        if p == "cached":
            d["cached"] = e.is_cached
        elif p == "status":
            d["status"] = e.flags & 0x1F
        elif p != "name":
            d[p] = getattr(e, p, "")
    return d


def _props(a: argparse.Namespace, bck: Bucket) -> list[str]:
    if a.props == "all":
        return list(_PROPS)
    props = [p.strip() for p in (a.props or "name,size").split(",") if p.strip()]
    bad = [p for p in props if p not in _PROPS]
    if bad:
        raise CommandError(f"unknown property {bad[0]!r}; expected some of: {','.join(_PROPS)} (or all)")
    if "name" not in props:
        props.insert(0, "name")
    if not bck.is_ais and not a.cached and "cached" not in props and a.props is None:
        props.append("cached")
    return props


# --- ais ls -----------------------------------------------------------------------------------

def cmd_ls(a: argparse.Namespace) -> int:
    c = client(a)
    if not a.name or provider_only(a.name) is not None:
        return _ls_buckets(a, c, provider_only(a.name) if a.name else "")
    bck, prefix = split_name(a.name)
    prefix = a.prefix or prefix
    if a.summary:
        return _print_summaries(a, [_summary(c, bck, prefix, a.cached)])
    props = _props(a, bck)
    flags = LS_CACHED if a.cached else 0
    if a.paged:
        return _ls_paged(a, c, bck, prefix, props, flags)
    entries = []
    with render.Progress(f"listing {bck.cname}", unit="objects") as bar:
        for e in c.list_objects(bck, prefix=prefix, props=",".join(props), page_size=a.page_size, flags=flags):
            entries.append(e)
            bar.update(1)
            if a.limit and len(entries) >= a.limit:
                break
    _print_entries(a, entries, props)
    if not a.json and not a.no_headers:
        total = sum(e.size for e in entries)
        print(f"Listed {len(entries)} object{'s' if len(entries) != 1 else ''}" +
              (f", {render.human_size(total)}" if "size" in props else ""))
    return 0


def _print_entries(a: argparse.Namespace, entries: list[ListEntry], props: list[str]) -> None:
    if a.json:
        render.print_json([_entry_json(e, props) for e in entries])
    elif entries:
        print(render.table(_columns(props), ([_value(e, p) for p in props] for e in entries),
                           no_headers=a.no_headers, right=["SIZE"]))


def _ls_paged(a: argparse.Namespace, c: Client, bck: Bucket, prefix: str, props: list[str], flags: int) -> int:
    token, uuid, n = "", "", 0
    pages = []
    while True:
        page = c.list_objects_page(bck, prefix=prefix, props=",".join(props), page_size=a.page_size,
                                   continuation_token=token, uuid=uuid, flags=flags)
        n += 1
        if a.json:
            pages.append({"page": n, "entries": [_entry_json(e, props) for e in page.entries],
                          "continuation_token": page.continuation_token})
        else:
            print(f"Page {n}: {len(page.entries)} objects")
            _print_entries(a, page.entries, props)
        token, uuid = page.continuation_token, page.uuid
        if not token or (a.max_pages and n >= a.max_pages):
            break
    if a.json:
        render.print_json(pages)
    return 0


def _ls_buckets(a: argparse.Namespace, c: Client, provider: str | None) -> int:
    buckets = sorted(c.list_buckets(provider or ""), key=lambda b: (b.provider, b.name))
    if a.summary:
        return _print_summaries(a, [_summary(c, b, "", a.cached) for b in buckets])
    if a.json:
        render.print_json([{"name": b.name, "provider": b.provider, "cname": b.cname} for b in buckets])
    elif not buckets:
        print("No buckets" + (f" of provider {provider}" if provider else ""))
    else:
        print(render.table(["NAME", "PROVIDER"], ([b.cname, b.provider] for b in buckets), no_headers=a.no_headers))
    return 0


# --- summaries (computed from a listing) -----------------------------------------------------------

def _summary(c: Client, bck: Bucket, prefix: str, cached: bool) -> dict[str, Any]:
    """Object count and sizes of a bucket (or the objects under `prefix`), from one full listing."""
    count = total = present = 0
    smallest: int | None = None
    largest = 0
    with render.Progress(f"summarizing {bck.cname}", unit="objects") as bar:
        for e in c.list_objects(bck, prefix=prefix, props="name,size,cached" if not bck.is_ais else "name,size",
                                flags=LS_CACHED if cached else 0):
            count += 1
            total += e.size
            present += 1 if (bck.is_ais or cached or e.is_cached) else 0
            smallest = e.size if smallest is None else min(smallest, e.size)
            largest = max(largest, e.size)
            bar.update(1, e.size)
    return {"name": bck.cname, "prefix": prefix, "objects": count, "present": present, "total_size": total,
            "min_size": smallest or 0, "avg_size": total // count if count else 0, "max_size": largest}


def _print_summaries(a: argparse.Namespace, summaries: list[dict[str, Any]]) -> int:
    if a.json:
        render.print_json(summaries)
        return 0
    rows = [[s["name"] + (f" (prefix {s['prefix']})" if s["prefix"] else ""), s["objects"], s["present"],
             render.human_size(s["total_size"]), render.human_size(s["min_size"]), render.human_size(s["avg_size"]),
             render.human_size(s["max_size"])] for s in summaries]
    print(render.table(["NAME", "OBJECTS", "PRESENT", "SIZE", "MIN", "AVG", "MAX"], rows, no_headers=a.no_headers,
                       right=["OBJECTS", "PRESENT", "SIZE", "MIN", "AVG", "MAX"]))
    return 0


def cmd_summary(a: argparse.Namespace) -> int:
    c = client(a)
    out = []
    for name in a.buckets:
        bck, prefix = split_name(name)
        if not c.bucket_exists(bck):
            raise CommandError(f'bucket "{bck.cname}" does not exist')
        out.append(_summary(c, bck, a.prefix or prefix, a.cached))
    return _print_summaries(a, out)


# --- create, rm, props ---------------------------------------------------------------------------

def cmd_create(a: argparse.Namespace) -> int:
    c = client(a)
    props = nest(parse_kv(a.props)) if a.props else None
    for name in a.buckets:
        bck = bucket_arg(name)
        if not bck.is_ais:
            raise CommandError(f"cannot create {bck.cname}: only ais:// buckets are created (remote buckets are "
                               "added on first use)")
        c.create_bucket(bck, exist_ok=a.ignore_existing, props=props)
        print(f'"{bck.cname}" created')
    return 0


def cmd_rm(a: argparse.Namespace) -> int:
    c = client(a)
    bcks = [bucket_arg(n) for n in a.buckets]
    for bck in bcks:
        if not bck.is_ais:
            raise CommandError(f"cannot destroy {bck.cname}: only ais:// buckets are destroyed "
                               f"(use 'ais bucket evict {bck.cname}' to drop its cached copies)")
    confirm(a, f"Destroy {', '.join(b.cname for b in bcks)} and every object in "
               f"{'them' if len(bcks) > 1 else 'it'}?")
    for bck in bcks:
        c.destroy_bucket(bck, missing_ok=a.ignore_missing)
        print(f'"{bck.cname}" destroyed')
    return 0


def cmd_props_show(a: argparse.Namespace) -> int:
    props = client(a).bucket_props(bucket_arg(a.bucket))
    rows = [(k, v) for k, v in render.flatten(props) if not a.section or k == a.section
            or k.startswith(a.section + ".")]
    if a.section and not rows:
        raise CommandError(f"no property {a.section!r} (sections: {', '.join(sorted(props))})")
    if a.json:
        render.print_json(props if not a.section else dict(rows))
    else:
        print(render.table(["PROPERTY", "VALUE"], rows, no_headers=a.no_headers))
    return 0


def cmd_props_set(a: argparse.Namespace) -> int:
    c = client(a)
    bck = bucket_arg(a.bucket)
    change = nest(parse_kv(a.pairs))
    c.set_bucket_props(bck, change)
    after = dict(render.flatten(c.bucket_props(bck)))
    print(render.table(["PROPERTY", "VALUE"], ((k, after.get(k, "-")) for k, _ in render.flatten(change))))
    print(f'"{bck.cname}" props updated')
    return 0


# --- cp, evict ------------------------------------------------------------------------------------

def cmd_cp(a: argparse.Namespace) -> int:
    c = client(a)
    src, prefix = split_name(a.src)
    dst = bucket_arg(a.dst)
    total = None
    if a.wait:
        total = sum(1 for _ in c.list_objects(src, prefix=a.prefix or prefix, props="name"))
    job_id = c.copy_bucket(src, dst, prefix=a.prefix or prefix)
    return jobs.started(a, c, job_id, f"copy {src.cname} => {dst.cname}", total)


def cmd_evict(a: argparse.Namespace) -> int:
    c = client(a)
    bcks = [bucket_arg(n) for n in a.buckets]
    for bck in bcks:
        if bck.is_ais:
            raise CommandError(f"cannot evict {bck.cname}: only remote buckets (s3://, gs://, az://) are evicted")
    confirm(a, f"Evict every cached object of {', '.join(b.cname for b in bcks)}?")
    for bck in bcks:
        params = [("provider", bck.provider), ("keep_bck_md", "true" if a.keep_md else "false")]
        c.request("DELETE", f"/v1/buckets/{bck.name}", params=params,
                  body={"action": "evict-remote-bck", "name": "", "value": None})
        print(f'"{bck.cname}" evicted' + (" (bucket metadata kept)" if a.keep_md else ""))
    return 0


def names_of(c: Client, bck: Bucket, prefix: str) -> Iterable[str]:
    return (e.name for e in c.list_objects(bck, prefix=prefix, props="name"))
