"""The CLI's pieces in-process: units, tables, progress lines, name parsing, key=value parsing,
and the command tree (every command has examples in its --help; completion knows every command)."""

from __future__ import annotations

import argparse
import io

import pytest

from ais.cli import completion, render
from ais.cli.common import CommandError, nest, parse_kv, provider_only, split_name
from ais.cli.main import build_parser

pytestmark = pytest.mark.timeout(20)


def test_units() -> None:
    assert [render.human_size(n) for n in (0, 512, 1024, 1536, 5 << 20, 3 << 40)] == [
        "0B", "512B", "1.00KiB", "1.50KiB", "5.00MiB", "3.00TiB"]
    assert render.human_size(None) == "-"
    assert [render.parse_size(s) for s in ("1024", "4KiB", "1.5MB", "2g", "7 b")] == [1024, 4096, 1572864,
                                                                                     2 << 30, 7]
    assert [render.human_duration(s) for s in (0.25, 42, 187, 7500, 3 * 86400 + 4 * 3600)] == [
        "250ms", "42s", "3m7s", "2h5m", "3d4h"]


def test_table_aligns_and_flatten_sorts() -> None:
    out = render.table(["name", "SIZE", "ok"], [["a", "1B", True], ["long-name", "10.00KiB", None]], right=["SIZE"])
    assert out.splitlines() == ["NAME           SIZE  OK",
                                "a                1B  true",
                                "long-name  10.00KiB  -"]
    assert render.table(["A"], [["x"]], no_headers=True) == "x"
    assert render.flatten({"b": {"y": 1, "x": False}, "a": [], "c": {}}) == [
        ("a", "[]"), ("b.x", False), ("b.y", 1), ("c", "{}")]


def test_progress_draws_only_when_enabled() -> None:
    now = [100.0]
    buf = io.StringIO()
    p = render.Progress("PUT ais://b", 4, stream=buf, force=True, clock=lambda: now[0])
    now[0] = 102.0
    p.update(2, 4096)
    assert buf.getvalue().startswith("\rPUT ais://b  [############............] 2/4 objects (50%)  1.0 objects/s  "
                                     "4.00KiB at 2.00KiB/s  2s")
    now[0] = 102.05            # within 0.1 s: not redrawn
    p.update(1)
    assert buf.getvalue().count("\r") == 1
    p.close()
    assert buf.getvalue().endswith("3/4 objects (75%)  1.5 objects/s  4.00KiB at 1.95KiB/s  2s\n")
    quiet = io.StringIO()       # not a terminal: nothing drawn
    with render.Progress("x", stream=quiet) as q:
        q.update(5)
    assert quiet.getvalue() == "" and "5 objects" in q.line()


def test_names() -> None:
    assert split_name("ais://b/dir/obj")[0].cname == "ais://b" and split_name("ais://b/dir/obj")[1] == "dir/obj"
    assert split_name("b")[0].cname == "ais://b"
    for text, cname in (("s3://x", "s3://x"), ("aws://x", "s3://x"), ("gs://x/o", "gs://x"), ("gcp://x", "gs://x"),
                        ("az://x", "az://x"), ("azure://x/", "az://x")):
        assert split_name(text)[0].cname == cname, text
    bck, obj = split_name("ais://@uuid#ns/b/o")
    assert (bck.name, bck.namespace.uname, obj) == ("b", "@uuid#ns", "o")
    assert provider_only("s3://") == "s3" and provider_only("ais://b") is None
    with pytest.raises(CommandError):
        split_name("ais://")
    with pytest.raises(CommandError):
        split_name("nope://b")


def test_key_values() -> None:
    assert parse_kv(["a.b=1", "c=true", "d=text", "e=1.5", "f=[1]"]) == {"a.b": 1, "c": True, "d": "text", "e": 1.5,
                                                                        "f": [1]}
    assert parse_kv(['{"x": {"y": false}}']) == {"x": {"y": False}}
    assert nest({"a.b": 1, "a.c": 2, "d": 3}) == {"a": {"b": 1, "c": 2}, "d": 3}
    with pytest.raises(CommandError):
        parse_kv(["novalue"])
    with pytest.raises(CommandError):
        nest({"a": 1, "a.b": 2})


def _leaves(p: argparse.ArgumentParser, path: str = "") -> list[tuple[str, argparse.ArgumentParser]]:
    out = [(path, p)]
    for a in p._actions:
        if isinstance(a, argparse._SubParsersAction):
            for name, sub in a.choices.items():
                out += _leaves(sub, f"{path} {name}".strip())
    return out


def test_every_command_has_examples_and_completes() -> None:
    parser = build_parser()
    commands = _leaves(parser)
    assert len(commands) > 60
    for path, p in commands:
        assert p.epilog and p.epilog.startswith("examples:\n  ais"), f"'ais {path}' has no examples"
        assert "examples:" in p.format_help()
    tree = completion.tree(parser)
    assert set(tree) == {path for path, _ in commands}
    for top in ("ls", "bucket", "put", "get", "object", "prefetch", "evict", "archive", "ml", "etl", "job", "show",
                "cluster", "config", "storage", "s3", "completion"):
        assert top in tree[""]
    assert {"create", "rm", "props", "summary", "cp", "evict"} <= set(tree["bucket"])
    assert {"--props", "--prefix", "--summary", "--paged", "--cached", "--json"} <= set(tree["ls"])
    assert '"bucket props") echo "--help show set";;' in completion.bash_script(parser)


def test_server_refusals_read_as_unsupported_only_when_the_route_or_action_is_missing() -> None:
    from ais.cli.common import unsupported
    from ais.client import StatusError
    said = {(status, msg): str(unsupported("cluster rm", StatusError(status, msg))) for status, msg in (
        (404, "p[x]: no such route: PUT /v1/cluster/proxy/y"), (405, "method not allowed"), (501, "later"),
        (400, "p[x]: unknown cluster action 'shutdown-node'"), (404, "node n1 is not in the cluster map"),
        (400, "shutdown-node needs a value"))}
    assert [v.startswith("cluster rm: not supported by this cluster") for v in said.values()] == [
        True, True, True, True, False, False]
    assert said[(404, "node n1 is not in the cluster map")] == "cluster rm: node n1 is not in the cluster map"
