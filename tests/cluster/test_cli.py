"""The `ais` CLI as a user runs it: one real subprocess per command against a real cluster.

Checks tables and --json, exit codes and one-line errors, progress bars on a pseudo-terminal
(and none when piped), confirmations, the endpoint/config-file chain, and the completion scripts
(bash, and zsh in a real zsh on a pseudo-terminal).

Kept fast: one cluster for the module, data that a test only reads set up through our client
library, each command a child of a fork server that has the CLI imported already (the terminal,
completion and endpoint tests run the real interpreter and entry point), and commands that do
not depend on each other run side by side (`Runner.batch`).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pty
import re
import select
import shutil
import subprocess
import sys
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterator

import pytest

from ais.cli import render
from ais.client import Client
from tests.cluster.cli_forkserver import ForkServer
from tests.cluster.conftest import Cluster

AIS = [sys.executable, "-m", "ais.cli.main"]


class Runner:
    """`ais ...` as a process: a fresh interpreter each time, or (with `server`) a child forked
    from one that has the CLI imported already (tests.cluster.cli_forkserver: same process
    boundary, stdio and exit status, without paying for the imports every time)."""

    def __init__(self, endpoint: str, config_home: str, server: ForkServer | None = None) -> None:
        self.env = {k: v for k, v in os.environ.items() if k not in ("AIS_CLI_CONFIG", "AIS_ENDPOINT")}
        self.env.update(AIS_ENDPOINT=endpoint, XDG_CONFIG_HOME=config_home)
        self.server = server

    def __call__(self, *args: str, rc: int | None = 0, stdin: bytes | None = None, cwd: str | None = None,
                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        full_env = {**self.env, **(env or {})}
        if self.server is not None:
            code, stdout, stderr = self.server.run(list(args), full_env, cwd, stdin, timeout_s=120)
        else:
            r = subprocess.run([*AIS, *args], capture_output=True, timeout=120, input=stdin,
                               stdin=None if stdin is not None else subprocess.DEVNULL, cwd=cwd, env=full_env)
            code, stdout, stderr = r.returncode, r.stdout, r.stderr
        out = subprocess.CompletedProcess(["ais", *args], code, stdout.decode(errors="replace"),
                                          stderr.decode(errors="replace"))
        out.raw = stdout  # type: ignore[attr-defined]
        if rc is not None:
            assert code == rc, f"ais {' '.join(args)}: rc={code}\n{out.stdout}\n{out.stderr}"
        assert "Traceback" not in out.stderr and "Unclosed" not in out.stderr, out.stderr
        return out

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--json").stdout)

    @staticmethod
    def batch(*calls: Callable[[], Any]) -> list[Any]:
        """Run independent commands side by side; their results in order (a failure raises)."""
        with ThreadPoolExecutor(4) as pool:
            return [f.result() for f in [pool.submit(fn) for fn in calls]]

    def fails(self, *args: str, code: int = 1, env: dict[str, str] | None = None) -> str:
        """The command fails with one line on stderr; that line."""
        r = self(*args, rc=code, env=env)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("ais: "), r.stderr
        return lines[0]


@pytest.fixture(scope="module")
def cli_server() -> Iterator[ForkServer]:
    server = ForkServer()
    yield server
    server.close()


@pytest.fixture
def ais(cluster: Cluster, cli_server: ForkServer, tmp_path: Any) -> Runner:
    return Runner(cluster.endpoint, str(tmp_path / "config"), cli_server)


@pytest.fixture
def lib(cluster: Cluster) -> Iterator[Client]:
    """Our client library, for data a test needs but does not check the CLI with."""
    c = Client(cluster.endpoint)
    yield c
    c.close()


def _tree(root: str, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)


FILES = {f"f{i}.bin": os.urandom(1000 * i) for i in range(1, 6)} | {"sub/h.txt": b"hello\n"}


def test_buckets_listing_and_props(ais: Runner, lib: Client, tmp_path: Any) -> None:
    b, b2 = f"ais://cli-b-{os.urandom(3).hex()}", f"ais://cli-c-{os.urandom(3).hex()}"
    assert ais("bucket", "create", b, b2).stdout.count("created") == 2
    src = str(tmp_path / "src")
    _tree(src, FILES)
    exists, _, put = ais.batch(lambda: ais.fails("bucket", "create", b), lambda: ais("bucket", "create", b, "--ignore-error"),
                               lambda: ais("put", "-r", src, b + "/d/"))
    assert "already exists" in exists and "PUT 6 files (14.65KiB)" in put.stdout

    (table, by_provider, names, props, sub, limited, pages, summary, bsummary, versioning, missing, s3rm, badprop,
     unconfirmed) = ais.batch(
        lambda: ais("ls").stdout.splitlines(), lambda: ais.json("ls", "ais://"), lambda: ais.json("ls", b),
        lambda: ais("ls", b, "--props", "name,size,checksum").stdout.splitlines(), lambda: ais.json("ls", b + "/d/sub/"),
        lambda: ais("ls", b, "--prefix", "d/f", "-H", "--limit", "2").stdout.split(),
        lambda: ais.json("ls", b, "--paged", "--page-size", "4"), lambda: ais.json("ls", b, "--summary"),
        lambda: ais.json("bucket", "summary", b, "--prefix", "d/sub/"),
        lambda: ais.json("bucket", "props", "show", b, "versioning"), lambda: ais.fails("ls", "ais://no-such-bucket-here"),
        lambda: ais.fails("bucket", "rm", "s3://x", "-y"), lambda: ais.fails("bucket", "props", "set", b, "nope=1"),
        lambda: ais.fails("bucket", "rm", b2))
    assert table[0].split() == ["NAME", "PROVIDER"] and f"{b}  ais" in table
    assert {"name": b.split("//")[1], "provider": "ais", "cname": b} in by_provider
    assert sorted(e["name"] for e in names) == sorted("d/" + n for n in FILES)
    assert props[0].split() == ["NAME", "SIZE", "CHECKSUM"]
    assert props[1].split()[:2] == ["d/f1.bin", "1000B"] and props[2].split()[:2] == ["d/f2.bin", "1.95KiB"]
    assert props[-1] == "Listed 6 objects, 14.65KiB"
    assert len(props[1].split()[2]) == 16            # an xxhash
    assert [e["name"] for e in sub] == ["d/sub/h.txt"]
    assert limited == ["d/f1.bin", "1000B", "d/f2.bin", "1.95KiB"]
    assert [len(p["entries"]) for p in pages] == [4, 2]
    assert summary[0]["objects"] == 6 and summary[0]["total_size"] == sum(len(v) for v in FILES.values())
    assert bsummary[0]["objects"] == 1
    assert versioning["versioning.enabled"] is True
    assert "does not exist" in missing and "cannot destroy s3://x" in s3rm and "unknown bucket property" in badprop
    # destructive commands ask, and refuse without a terminal unless --yes
    assert "pass --yes" in unconfirmed

    assert "versioning.enabled  false" in ais("bucket", "props", "set", b, "versioning.enabled=false").stdout
    assert ais.json("bucket", "props", "show", b)["versioning"]["enabled"] is False
    assert "destroyed" in ais("bucket", "rm", b, b2, "--yes").stdout
    assert not {b, b2} & {x.cname for x in lib.list_buckets("ais")}


def test_put_get_and_object_commands(ais: Runner, lib: Client, tmp_path: Any) -> None:
    b = f"ais://cli-o-{os.urandom(3).hex()}"
    lib.create_bucket(b)
    src = str(tmp_path / "src")
    _tree(src, FILES)
    one, _, stdin, _, isdir, nofile, noname = ais.batch(
        lambda: ais("put", os.path.join(src, "f3.bin"), b), lambda: ais("put", os.path.join(src, "f3.bin"), b + "/x/y.bin"),
        lambda: ais("put", "-", b + "/in.txt", stdin=b"stdin data\n"), lambda: ais("put", "-r", src, b + "/all", "--concurrency", "3"),
        lambda: ais.fails("put", src, b), lambda: ais.fails("put", str(tmp_path / "nope"), b), lambda: ais.fails("put", "-", b))
    assert f'=> "{b}/f3.bin" (2.93KiB)' in one.stdout and "(11B)" in stdin.stdout
    assert "is a directory: pass -r" in isdir and "no such file" in nofile and "needs an object name" in noname

    out = tmp_path / "out"
    out.mkdir()
    _, _, hello, many, missing, part, show, rows = ais.batch(
        lambda: ais("get", b + "/x/y.bin", str(out)),                     # into a directory
        lambda: ais("get", b + "/in.txt", cwd=str(out)),                  # default: basename in cwd
        lambda: ais("get", b + "/all/sub/h.txt", "-").raw,
        lambda: ais("get", b, str(out / "many"), "--prefix", "all/").stdout, lambda: ais.fails("get", b + "/missing", str(out)),
        lambda: ais("object", "cat", b + "/all/f2.bin", "--offset", "10", "--length", "5").raw,
        lambda: ais.json("object", "show", b + "/in.txt"),
        lambda: dict(line.split(None, 1) for line in ais("object", "show", b + "/in.txt").stdout.splitlines()[1:]))
    assert (out / "y.bin").read_bytes() == FILES["f3.bin"]
    assert (out / "in.txt").read_bytes() == b"stdin data\n"
    assert hello == b"hello\n"
    assert "GET 6 objects (14.65KiB)" in many
    for name, data in FILES.items():
        assert (out / "many" / "all" / name).read_bytes() == data
    assert "does not exist" in missing
    assert not [p for p in os.listdir(out) if "ais-part" in p]
    assert part == FILES["f2.bin"][10:15]
    assert show["size"] == 11 and show["checksum_type"] == "xxhash" and show["present"] is True
    assert rows["size"].strip() == "11B" and rows["version"].strip() == "1"

    assert f'"{b}/in.txt" => "{b}/moved.txt"' in ais("object", "mv", b + "/in.txt", "moved.txt").stdout
    ais("object", "cp", b + "/moved.txt", b + "/copied.txt")
    copied, gone, unconfirmed, notobj, _ = ais.batch(
        lambda: ais("object", "cat", b + "/copied.txt").raw, lambda: ais.fails("object", "show", b + "/in.txt"),
        lambda: ais.fails("object", "rm", b, "--prefix", "all/"), lambda: ais.fails("object", "cat", b),
        lambda: ais("bucket", "nosuchcmd", rc=2))
    assert copied == b"stdin data\n" and "does not exist" in gone and "pass --yes" in unconfirmed
    assert "expected an object" in notobj
    ais("object", "rm", b + "/moved.txt", b + "/copied.txt")
    assert "done (6 objects" in ais("object", "rm", b, "--prefix", "all/", "-y", "--wait").stdout
    assert sorted(e["name"] for e in ais.json("ls", b)) == ["f3.bin", "x/y.bin"]
    lib.destroy_bucket(b)


def test_jobs(ais: Runner, lib: Client) -> None:
    b, dst = f"ais://cli-j-{os.urandom(3).hex()}", f"ais://cli-k-{os.urandom(3).hex()}"
    lib.create_bucket(b)
    lib.put_object(b, "o0", b"x" * 100)
    lib.put_object(b, "o1", b"x" * 100)
    copied = ais("bucket", "cp", b, dst, "--wait").stdout
    assert "done (2 objects, 200B)" in copied
    job_id = copied.strip().split()[-1]
    listed, table, shown, waited, stop_missing, wait_missing = ais.batch(
        lambda: ais.json("job", "ls", "--kind", "copy-bck"), lambda: ais("job", "show", job_id).stdout,
        lambda: ais.json("show", "job", job_id), lambda: ais("job", "wait", job_id).stdout,
        lambda: ais.fails("job", "stop", "NoSuchJob00"), lambda: ais.fails("job", "wait", "NoSuchJob00", "--timeout", "1"))
    jobs = {j["id"]: j for j in listed}
    assert jobs[job_id]["state"] == "finished" and jobs[job_id]["objects"] == 2 and jobs[job_id]["kind"] == "copy-bck"
    assert table.splitlines()[0].split()[:3] == ["ID", "KIND", "BUCKET"] and f"{b} => {dst}" in table
    assert sum(1 for line in table.splitlines() if line.split() and len(line.split()[0]) == 8) == 3  # per target
    assert shown["job"]["bytes"] == 200
    assert f"Job {job_id} (copy-bck) finished: 2 objects, 200B" in waited
    assert "not found" in stop_missing and "not found" in wait_missing
    started = ais("bucket", "cp", b, dst).stdout
    assert f"ais show job {started.split()[6]}" in started
    ais("job", "wait", started.split()[6])
    lib.destroy_bucket(b)
    lib.destroy_bucket(dst)


def test_show_config_storage_and_membership(ais: Runner, cluster: Cluster) -> None:
    (table, doc, perf, perf_rows, storage, storage_table, mp_rows, cluster_timeouts, no_section, no_node, add, primary, rm,
     keys) = ais.batch(
        lambda: ais("show", "cluster").stdout.splitlines(), lambda: ais.json("show", "cluster"),
        lambda: ais.json("show", "performance"), lambda: ais("show", "performance", "-H").stdout,
        lambda: ais.json("show", "storage"), lambda: ais("show", "storage").stdout.splitlines(),
        lambda: ais("storage", "mountpath", "ls", "-H").stdout, lambda: ais.json("show", "config", "cluster", "timeouts"),
        lambda: ais.fails("config", "cluster", "show", "nope"), lambda: ais.fails("config", "node", "XXX", "show"),
        # membership changes that name no such node fail in one line
        lambda: ais.fails("cluster", "add", "http://127.0.0.1:1"), lambda: ais.fails("cluster", "set-primary", "NoSuchProxy"),
        lambda: ais.fails("cluster", "rm", "NoSuchNode", "-y"), lambda: ais("s3", "keys", "ls").stdout)
    assert table[0].split()[:3] == ["PROXY", "PUBLIC", "URL"] and "(primary)" in table[1]
    targets = [line for line in table if line.startswith("t[")]
    assert len(targets) == 3 and all(line.split()[-1] == "online" for line in targets)
    assert "1 proxy, 3 targets" in table[-1]
    tids = sorted(doc["targets"])
    assert len(tids) == 3 and doc["primary"] in doc["proxies"]
    assert sorted(perf) == tids and all("cpu_pct" in v and "overall" in v for v in perf.values())
    assert perf_rows.count("t[") == 3
    # storage: every mountpath shown; totals count the one filesystem they all share once
    fs = os.statvfs(cluster.root)
    assert all(len(v["mountpaths"]) == 2 for v in storage.values())
    assert all(v["total"] == fs.f_blocks * fs.f_frsize for v in storage.values())
    assert len(mp_rows.strip().splitlines()) == 6
    assert storage_table[-1].startswith("6 mountpaths on 3 targets, 1 filesystem: ")
    assert storage_table[-1].endswith(" of " + render.human_size(fs.f_blocks * fs.f_frsize)), storage_table[-1]
    capacity = [line.split()[4] for line in table if line.startswith("t[")]
    assert capacity == [render.human_size(fs.f_blocks * fs.f_frsize)] * 3, table

    assert "timeouts.control_s" in cluster_timeouts
    assert ais.json("config", "node", tids[0], "show", "timeouts") == cluster_timeouts
    assert "no config 'nope'" in no_section and "no node 'XXX'" in no_node
    # set-config: applied and shown
    old = cluster_timeouts["timeouts.control_s"]
    ais("config", "cluster", "set", f"timeouts.control_s={old + 1}")
    assert ais.json("config", "cluster", "show", "timeouts.control_s") == {"timeouts.control_s": old + 1}
    ais("config", "cluster", "set", f"timeouts.control_s={old}")
    assert "cluster add" in add and "no ais node answers" in add
    assert "set-primary" in primary and "no node 'NoSuchNode'" in rm
    assert "no S3 access keys" in keys


def test_archive_and_get_batch(ais: Runner, lib: Client, tmp_path: Any) -> None:
    b = f"ais://cli-a-{os.urandom(3).hex()}"
    lib.create_bucket(b)
    src = str(tmp_path / "src")
    _tree(src, FILES)
    for name, data in FILES.items():
        lib.put_object(b, "objs/" + name, data)
    assert "ARCHIVE 6 files" in ais("archive", "put", src, b + "/shard.tar").stdout
    listed, member, _, unknown, served = ais.batch(
        lambda: ais.json("archive", "ls", b + "/shard.tar"),
        lambda: ais("archive", "get", b + "/shard.tar", "-", "--archpath", "sub/h.txt").raw,
        lambda: ais("archive", "get", b + "/shard.tar", str(tmp_path / "x")),
        lambda: ais.fails("archive", "put", src, b + "/shard.bin"),
        lambda: ais("archive", "put", b, b + "/srv.tar", "--list", "objs/f1.bin,objs/f2.bin", "--wait").stdout)
    assert sorted(e["name"] for e in listed if e["in_archive"]) == sorted(f"shard.tar/{n}" for n in FILES)
    assert member == b"hello\n"
    assert all((tmp_path / "x" / n).read_bytes() == d for n, d in FILES.items())
    assert "cannot tell the archive format" in unknown
    assert "done (2 objects" in served

    out = str(tmp_path / "batch.tar")
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps([b + "/objs/f1.bin", {"obj": b + "/shard.tar", "archpath": "sub/h.txt"},
                                b + "/missing"]))
    from_srv, batch, r, missing = ais.batch(
        lambda: ais("archive", "get", b + "/srv.tar", "-", "--archpath", "objs/f2.bin").raw,
        lambda: ais("ml", "get-batch", out, b + "/objs/f1.bin", b + "/objs/sub/h.txt", b + "/objs/f5.bin").stdout,
        lambda: ais("ml", "get-batch", "-", "--spec", str(spec), "--cont-on-err", "--only-obj-name"),
        lambda: ais.fails("ml", "get-batch", str(tmp_path / "b2.tar"), b + "/missing"))
    assert from_srv == FILES["f2.bin"]
    assert "GET-BATCH 3 of 3 entries" in batch
    with tarfile.open(out) as t:
        bname = b.split("//")[1]
        assert t.getnames() == [f"{bname}/objs/f1.bin", f"{bname}/objs/sub/h.txt", f"{bname}/objs/f5.bin"]
        assert t.extractfile(f"{bname}/objs/f5.bin").read() == FILES["f5.bin"]  # type: ignore[union-attr]
    with tarfile.open(fileobj=io.BytesIO(r.raw)) as t:
        assert t.getnames() == ["objs/f1.bin", "shard.tar/sub/h.txt"]
    assert "warning" in r.stderr and "missing" in r.stderr
    assert "does not exist" in missing
    assert not os.path.exists(tmp_path / "b2.tar") and not os.path.exists(tmp_path / "b2.tar.ais-part")
    lib.destroy_bucket(b)


def test_etl_commands(ais: Runner, lib: Client, tmp_path: Any) -> None:
    b, dst, name = f"ais://cli-e-{os.urandom(3).hex()}", f"ais://cli-f-{os.urandom(3).hex()}", "cli-md5-etl"
    lib.create_bucket(b)
    lib.put_object(b, "a.txt", b"hello\n")
    lib.put_object(b, "b.txt", b"world\n")
    try:
        assert "is running" in ais("etl", "init", "--name", name, "--image", "aistorage/transformer_md5").stdout
        md5 = hashlib.md5(b"hello\n").hexdigest().encode()
        dup, listed, shown, one, inline = ais.batch(
            lambda: ais.fails("etl", "init", "--name", name, "--image", "aistorage/transformer_md5"),
            lambda: ais.json("etl", "ls"), lambda: ais.json("etl", "show", name),
            lambda: ais("etl", "object", name, b + "/a.txt", "-").raw, lambda: ais("get", b + "/a.txt", "-", "--etl", name).raw)
        assert "already exists" in dup
        assert next(e for e in listed if e["id"] == name)["stage"] == "Running"
        assert shown["init_msg"]["runtime"]["image"] == "aistorage/transformer_md5"
        assert one == md5 and inline == md5
        assert "done (2 objects" in ais("etl", "bucket", name, b, dst, "--wait").stdout
        transformed, logs = ais.batch(lambda: ais("object", "cat", dst + "/b.txt").raw, lambda: ais("etl", "logs", name).stdout)
        assert transformed == hashlib.md5(b"world\n").hexdigest().encode()
        assert logs.count("===== t[") == 3
        assert "stopped" in ais("etl", "stop", name).stdout
        assert next(e for e in ais.json("etl", "ls") if e["id"] == name)["stage"] != "Running"
        assert "started" in ais("etl", "start", name).stdout
        assert "pass --yes" in ais.fails("etl", "rm", name)
        assert "removed" in ais("etl", "rm", name, "-y").stdout
        assert "does not exist" in ais.fails("etl", "show", name)
    finally:
        ais("etl", "rm", name, "-y", rc=None)
        lib.destroy_bucket(b, missing_ok=True)
        lib.destroy_bucket(dst, missing_ok=True)


def _run_on_pty(runner: Runner, *args: str) -> tuple[int, str]:
    """Run with stderr on a pseudo-terminal (stdout piped); (rc, what the terminal got)."""
    master, slave = pty.openpty()
    p = subprocess.Popen([*AIS, *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave,
                         env=runner.env)
    os.close(slave)
    got = b""
    while True:
        r, _, _ = select.select([master], [], [], 60)
        if not r:
            break
        try:
            chunk = os.read(master, 4096)
        except OSError:        # EIO: the child closed the terminal
            break
        if not chunk:
            break
        got += chunk
    os.close(master)
    assert p.stdout is not None
    p.stdout.read()
    return p.wait(timeout=60), got.decode(errors="replace")


def test_progress_bars_on_a_terminal_only(ais: Runner, lib: Client, tmp_path: Any) -> None:
    b = f"ais://cli-p-{os.urandom(3).hex()}"
    lib.create_bucket(b)
    src = str(tmp_path / "many")
    _tree(src, {f"d/{i:03d}.bin": os.urandom(2000) for i in range(60)})
    rc, term = _run_on_pty(ais, "put", "-r", src, b, "--concurrency", "4")
    assert rc == 0, term
    assert "\r" in term and f"PUT {b}" in term and "60/60 objects (100%)" in term and "objects/s" in term
    assert "[" + "#" * 24 + "]" in term and "KiB at" in term
    rc, term = _run_on_pty(ais, "bucket", "cp", b, b + "-copy", "--wait")
    assert rc == 0 and "\rcopy " in term and "objects/s" in term, term
    piped = ais("put", "-r", src, b + "/again/")
    assert piped.stderr == "" and "\r" not in piped.stdout
    lib.destroy_bucket(b)
    lib.destroy_bucket(b + "-copy")


def test_endpoint_and_config_file(ais: Runner, cluster: Cluster, tmp_path: Any) -> None:
    down = "http://127.0.0.1:1"
    err = ais.fails("ls", env={"AIS_ENDPOINT": down})
    assert "cannot reach the cluster at http://127.0.0.1:1" in err
    ais("ls", "--endpoint", cluster.endpoint, env={"AIS_ENDPOINT": down})           # the flag wins
    no_env = {k: v for k, v in ais.env.items() if k != "AIS_ENDPOINT"}
    cfg = tmp_path / "cli.json"
    cfg.write_text(json.dumps({"cluster": {"url": cluster.endpoint}}))
    r = subprocess.run([*AIS, "ls", "--json"], capture_output=True, text=True, timeout=60,
                       env={**no_env, "AIS_CLI_CONFIG": str(cfg)})
    assert r.returncode == 0 and isinstance(json.loads(r.stdout), list), r.stderr
    assert "updated" in ais("config", "cli", "set", f"cluster.url={down}").stdout
    assert ais.json("config", "cli", "show") == {"cluster": {"url": down}}
    r = subprocess.run([*AIS, "ls"], capture_output=True, text=True, timeout=60, env=no_env)
    assert r.returncode == 1 and f"cannot reach the cluster at {down}" in r.stderr
    cfg.write_text("{not json")
    r = subprocess.run([*AIS, "ls"], capture_output=True, text=True, timeout=60,
                       env={**no_env, "AIS_CLI_CONFIG": str(cfg)})
    assert r.returncode == 1 and "cannot read the CLI config" in r.stderr and "Traceback" not in r.stderr


class Zsh:
    """An interactive zsh on a pseudo-terminal, with `completion` installed as `_ais` in its $fpath."""

    def __init__(self, home: str, completion: str, env: dict[str, str]) -> None:
        with open(os.path.join(home, "_ais"), "w", encoding="utf-8") as f:
            f.write(completion)
        with open(os.path.join(home, ".zshrc"), "w", encoding="utf-8") as f:
            f.write(f"fpath=({home} $fpath)\nautoload -Uz compinit && compinit -u -D\nbindkey -e\nPS1='%% '\n")
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(["zsh", "-i"], stdin=slave, stdout=slave, stderr=slave, cwd=home,
                                     env={**env, "ZDOTDIR": home, "HOME": home, "TERM": "dumb"})
        os.close(slave)
        self.read_until("% ")

    def read_until(self, pattern: str, timeout_s: float = 30.0) -> str:
        got, deadline = b"", time.monotonic() + timeout_s
        while not re.search(pattern.encode(), got):
            assert time.monotonic() < deadline, f"zsh: no {pattern!r} in {got!r}"
            if select.select([self.master], [], [], 0.5)[0]:
                got += os.read(self.master, 65536)
        return got.decode(errors="replace")

    def complete(self, line: str) -> str:
        """The command line after typing `line` and TAB (then: Ctrl-A, print it instead of running it)."""
        os.write(self.master, line.encode() + b"\t\x01print -r -- RESULT:\r")
        out = self.read_until(r"\nRESULT:[^\r\n]*\r?\n[\s\S]*% ")   # the printed line, then the next prompt
        return out[out.rindex("\nRESULT:") + len("\nRESULT:"):].splitlines()[0].strip()

    def close(self) -> None:
        os.write(self.master, b"exit\r")
        self.proc.wait(timeout=30)
        os.close(self.master)


def test_completion_scripts(ais: Runner, lib: Client, tmp_path: Any) -> None:
    b = f"ais://cli-z-{os.urandom(3).hex()}"
    lib.create_bucket(b)
    bash, zsh = ais.batch(lambda: ais("completion", "bash").stdout, lambda: ais("completion", "zsh").stdout)
    script = tmp_path / "ais.bash"
    script.write_text(bash)
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    bindir = os.path.dirname(sys.executable)
    probe = f'''
source {script}
comp() {{ COMP_LINE="$1"; COMP_POINT=${{#1}}; read -ra COMP_WORDS <<< "$1"
  [[ "$1" == *" " ]] && COMP_WORDS+=(""); COMP_CWORD=$((${{#COMP_WORDS[@]}}-1)); _ais; echo "${{COMPREPLY[*]}}"; }}
comp "ais buc"; comp "ais bucket "; comp "ais bucket props s"; comp "ais ls --pr"; comp "ais ls {b[:-3]}"
'''
    env = {**ais.env, "PATH": f"{bindir}:{os.environ['PATH']}"}
    r = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, timeout=60, env=env)
    lines = r.stdout.splitlines()
    assert lines[0] == "bucket" and lines[1].split()[:3] == ["--help", "create", "rm"]
    assert lines[2] == "show set" and lines[3] == "--prefix --props"
    assert lines[4] == b[4:] + "/", r.stdout + r.stderr      # after the ':' bash splits at
    lib.destroy_bucket(b)

    # zsh: a native completion function, loaded from $fpath by compinit in a real interactive zsh
    assert zsh.startswith("#compdef ais\n") and "compadd" in zsh and "bashcompinit" not in zsh
    if not shutil.which("zsh"):
        pytest.skip("zsh is not installed (deploy/local/install.sh test installs it when run as root)")
    assert subprocess.run(["zsh", "-n"], input=zsh, text=True).returncode == 0
    home = tmp_path / "zsh"
    home.mkdir()
    (home / "notes-file.txt").write_text("x")
    lib.create_bucket(b)
    shell = Zsh(str(home), zsh, env)
    try:
        assert shell.complete("ais buc") == "ais bucket"                      # a command
        assert shell.complete("ais cluster shu") == "ais cluster shutdown"    # a subcommand
        assert shell.complete("ais ls --su") == "ais ls --summary"            # an option
        assert shell.complete("ais put ./notes") == "ais put ./notes-file.txt"   # files where no word fits
        assert shell.complete(f"ais ls {b[:-3]}") == f"ais ls {b}/"           # bucket names (via ais ls)
    finally:
        shell.close()
        lib.destroy_bucket(b)


def test_remote_bucket_commands(make_cluster: Any, moto: Any, cli_server: ForkServer, tmp_path: Any) -> None:
    c = make_cluster(proxies=1, targets=2, mountpaths=1, env=moto.env)
    ais = Runner(c.endpoint, str(tmp_path / "config"), cli_server)
    name = f"cli-remote-{os.urandom(3).hex()}"
    s3 = moto.client()
    s3.create_bucket(Bucket=name)
    for i in range(10):
        s3.put_object(Bucket=name, Key=f"shard-{i:02d}.tar", Body=b"x" * (i + 1))
    entries = ais.json("ls", f"s3://{name}")
    assert [e["name"] for e in entries] == [f"shard-{i:02d}.tar" for i in range(10)]
    assert not any(e["cached"] for e in entries)
    assert "CACHED" in ais("ls", f"s3://{name}").stdout.splitlines()[0]
    assert "done (4 objects" in ais("prefetch", f"s3://{name}", "--template", "shard-{00..03}.tar", "--wait").stdout
    assert [e["name"] for e in ais.json("ls", f"s3://{name}", "--cached")] == [f"shard-{i:02d}.tar" for i in range(4)]
    assert ais.json("bucket", "summary", f"s3://{name}")[0]["present"] == 4
    ais("evict", f"s3://{name}/shard-00.tar", "--wait")
    assert len(ais.json("ls", f"s3://{name}", "--cached")) == 3
    assert "prefetch needs a remote bucket" in ais.fails("prefetch", "ais://local")
    assert "evicted" in ais("bucket", "evict", f"s3://{name}", "--keep-md", "-y").stdout
    assert ais.json("ls", f"s3://{name}", "--cached") == []
    assert "cannot create s3://" in ais.fails("bucket", "create", f"s3://{name}")
