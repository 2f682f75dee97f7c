"""The `ais` CLI as a user runs it: one real subprocess per command against a real cluster.

Checks tables and --json, exit codes and one-line errors, progress bars on a pseudo-terminal
(and none when piped), confirmations, the endpoint/config-file chain, and the completion scripts.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pty
import select
import shutil
import subprocess
import sys
import tarfile
from typing import Any

import pytest

from tests.cluster.conftest import Cluster

AIS = [sys.executable, "-m", "ais.cli.main"]


class Runner:
    def __init__(self, endpoint: str, config_home: str) -> None:
        self.env = {k: v for k, v in os.environ.items() if k not in ("AIS_CLI_CONFIG", "AIS_ENDPOINT")}
        self.env.update(AIS_ENDPOINT=endpoint, XDG_CONFIG_HOME=config_home)

    def __call__(self, *args: str, rc: int | None = 0, stdin: bytes | None = None, cwd: str | None = None,
                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        r = subprocess.run([*AIS, *args], capture_output=True, timeout=120, input=stdin,
                           stdin=None if stdin is not None else subprocess.DEVNULL, cwd=cwd,
                           env={**self.env, **(env or {})})
        out = subprocess.CompletedProcess(r.args, r.returncode, r.stdout.decode(errors="replace"),
                                          r.stderr.decode(errors="replace"))
        out.raw = r.stdout  # type: ignore[attr-defined]
        if rc is not None:
            assert r.returncode == rc, f"ais {' '.join(args)}: rc={r.returncode}\n{out.stdout}\n{out.stderr}"
        assert "Traceback" not in out.stderr and "Unclosed" not in out.stderr, out.stderr
        return out

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--json").stdout)

    def fails(self, *args: str, code: int = 1, env: dict[str, str] | None = None) -> str:
        """The command fails with one line on stderr; that line."""
        r = self(*args, rc=code, env=env)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("ais: "), r.stderr
        return lines[0]


@pytest.fixture
def ais(cluster: Cluster, tmp_path: Any) -> Runner:
    return Runner(cluster.endpoint, str(tmp_path / "config"))


def _tree(root: str, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)


FILES = {f"f{i}.bin": os.urandom(1000 * i) for i in range(1, 6)} | {"sub/h.txt": b"hello\n"}


def test_buckets_listing_and_props(ais: Runner, tmp_path: Any) -> None:
    b, b2 = f"ais://cli-b-{os.urandom(3).hex()}", f"ais://cli-c-{os.urandom(3).hex()}"
    assert ais("bucket", "create", b, b2).stdout.count("created") == 2
    assert "already exists" in ais.fails("bucket", "create", b)
    ais("bucket", "create", b, "--ignore-error")
    src = str(tmp_path / "src")
    _tree(src, FILES)
    assert "PUT 6 files (14.65KiB)" in ais("put", "-r", src, b + "/d/").stdout

    table = ais("ls").stdout.splitlines()
    assert table[0].split() == ["NAME", "PROVIDER"] and f"{b}  ais" in table
    assert {"name": b.split("//")[1], "provider": "ais", "cname": b} in ais.json("ls", "ais://")
    assert sorted(e["name"] for e in ais.json("ls", b)) == sorted("d/" + n for n in FILES)
    lines = ais("ls", b, "--props", "name,size,checksum").stdout.splitlines()
    assert lines[0].split() == ["NAME", "SIZE", "CHECKSUM"]
    assert lines[1].split()[:2] == ["d/f1.bin", "1000B"] and lines[2].split()[:2] == ["d/f2.bin", "1.95KiB"]
    assert lines[-1] == "Listed 6 objects, 14.65KiB"
    assert len(lines[1].split()[2]) == 16            # an xxhash
    assert [e["name"] for e in ais.json("ls", b + "/d/sub/")] == ["d/sub/h.txt"]
    assert ais("ls", b, "--prefix", "d/f", "-H", "--limit", "2").stdout.split() == ["d/f1.bin", "1000B",
                                                                                   "d/f2.bin", "1.95KiB"]
    pages = ais.json("ls", b, "--paged", "--page-size", "4")
    assert [len(p["entries"]) for p in pages] == [4, 2]
    summary = ais.json("ls", b, "--summary")
    assert summary[0]["objects"] == 6 and summary[0]["total_size"] == sum(len(v) for v in FILES.values())
    assert ais.json("bucket", "summary", b, "--prefix", "d/sub/")[0]["objects"] == 1

    assert ais.json("bucket", "props", "show", b, "versioning")["versioning.enabled"] is True
    assert "versioning.enabled  false" in ais("bucket", "props", "set", b, "versioning.enabled=false").stdout
    assert ais.json("bucket", "props", "show", b)["versioning"]["enabled"] is False
    assert "unknown bucket property" in ais.fails("bucket", "props", "set", b, "nope=1")
    assert "does not exist" in ais.fails("ls", "ais://no-such-bucket-here")
    assert "cannot destroy s3://x" in ais.fails("bucket", "rm", "s3://x", "-y")

    # destructive commands ask, and refuse without a terminal unless --yes
    assert "pass --yes" in ais.fails("bucket", "rm", b2)
    assert "destroyed" in ais("bucket", "rm", b, b2, "--yes").stdout
    assert b not in [x["cname"] for x in ais.json("ls")]


def test_put_get_and_object_commands(ais: Runner, tmp_path: Any) -> None:
    b = f"ais://cli-o-{os.urandom(3).hex()}"
    ais("bucket", "create", b)
    src = str(tmp_path / "src")
    _tree(src, FILES)
    assert f'=> "{b}/f3.bin" (2.93KiB)' in ais("put", os.path.join(src, "f3.bin"), b).stdout
    ais("put", os.path.join(src, "f3.bin"), b + "/x/y.bin")
    assert "(11B)" in ais("put", "-", b + "/in.txt", stdin=b"stdin data\n").stdout
    ais("put", "-r", src, b + "/all", "--concurrency", "3")
    assert "is a directory: pass -r" in ais.fails("put", src, b)
    assert "no such file" in ais.fails("put", str(tmp_path / "nope"), b)
    assert "needs an object name" in ais.fails("put", "-", b, )

    out = tmp_path / "out"
    out.mkdir()
    ais("get", b + "/x/y.bin", str(out))                      # into a directory
    assert (out / "y.bin").read_bytes() == FILES["f3.bin"]
    ais("get", b + "/in.txt", cwd=str(out))                   # default: basename in cwd
    assert (out / "in.txt").read_bytes() == b"stdin data\n"
    assert ais("get", b + "/all/sub/h.txt", "-").raw == b"hello\n"   # type: ignore[attr-defined]
    assert "GET 6 objects (14.65KiB)" in ais("get", b, str(out / "many"), "--prefix", "all/").stdout
    for name, data in FILES.items():
        assert (out / "many" / "all" / name).read_bytes() == data
    assert "does not exist" in ais.fails("get", b + "/missing", str(out))
    assert not [p for p in os.listdir(out) if "ais-part" in p]

    assert ais("object", "cat", b + "/all/f2.bin", "--offset", "10", "--length", "5").raw == FILES["f2.bin"][10:15]  # type: ignore[attr-defined]
    show = ais.json("object", "show", b + "/in.txt")
    assert show["size"] == 11 and show["checksum_type"] == "xxhash" and show["present"] is True
    rows = dict(line.split(None, 1) for line in ais("object", "show", b + "/in.txt").stdout.splitlines()[1:])
    assert rows["size"].strip() == "11B" and rows["version"].strip() == "1"
    assert f'"{b}/in.txt" => "{b}/moved.txt"' in ais("object", "mv", b + "/in.txt", "moved.txt").stdout
    ais("object", "cp", b + "/moved.txt", b + "/copied.txt")
    assert ais("object", "cat", b + "/copied.txt").raw == b"stdin data\n"   # type: ignore[attr-defined]
    assert "does not exist" in ais.fails("object", "show", b + "/in.txt")
    ais("object", "rm", b + "/moved.txt", b + "/copied.txt")
    assert "pass --yes" in ais.fails("object", "rm", b, "--prefix", "all/")
    assert "done (6 objects" in ais("object", "rm", b, "--prefix", "all/", "-y", "--wait").stdout
    assert sorted(e["name"] for e in ais.json("ls", b)) == ["f3.bin", "x/y.bin"]
    assert "expected an object" in ais.fails("object", "cat", b)
    ais("bucket", "nosuchcmd", rc=2)
    ais("bucket", "rm", b, "-y")


def test_jobs(ais: Runner) -> None:
    b, dst = f"ais://cli-j-{os.urandom(3).hex()}", f"ais://cli-k-{os.urandom(3).hex()}"
    ais("bucket", "create", b)
    ais("put", "-", f"{b}/o0", stdin=b"x" * 100)
    ais("object", "cp", f"{b}/o0", f"{b}/o1")
    copied = ais("bucket", "cp", b, dst, "--wait").stdout
    assert "done (2 objects, 200B)" in copied
    job_id = copied.strip().split()[-1]
    jobs = {j["id"]: j for j in ais.json("job", "ls", "--kind", "copy-bck")}
    assert jobs[job_id]["state"] == "finished" and jobs[job_id]["objects"] == 2 and jobs[job_id]["kind"] == "copy-bck"
    table = ais("job", "show", job_id).stdout
    assert table.splitlines()[0].split()[:3] == ["ID", "KIND", "BUCKET"] and f"{b} => {dst}" in table
    assert sum(1 for line in table.splitlines() if line.split() and len(line.split()[0]) == 8) == 3  # per target
    assert ais.json("show", "job", job_id)["job"]["bytes"] == 200
    assert f"Job {job_id} (copy-bck) finished: 2 objects, 200B" in ais("job", "wait", job_id).stdout
    started = ais("bucket", "cp", b, dst).stdout
    assert f"ais show job {started.split()[6]}" in started
    assert "not found" in ais.fails("job", "stop", "NoSuchJob00")
    assert "not found" in ais.fails("job", "wait", "NoSuchJob00", "--timeout", "1")
    ais("bucket", "rm", b, dst, "-y")


def test_show_config_storage_and_membership(ais: Runner, cluster: Cluster) -> None:
    table = ais("show", "cluster").stdout.splitlines()
    assert table[0].split()[:3] == ["PROXY", "PUBLIC", "URL"] and "(primary)" in table[1]
    targets = [line for line in table if line.startswith("t[")]
    assert len(targets) == 3 and all(line.split()[-1] == "online" for line in targets)
    assert "1 proxy, 3 targets" in table[-1]
    doc = ais.json("show", "cluster")
    tids = sorted(doc["targets"])
    assert len(tids) == 3 and doc["primary"] in doc["proxies"]
    perf = ais.json("show", "performance")
    assert sorted(perf) == tids and all("cpu_pct" in v and "overall" in v for v in perf.values())
    assert ais("show", "performance", "-H").stdout.count("t[") == 3
    storage = ais.json("show", "storage")
    assert all(len(v["mountpaths"]) == 2 for v in storage.values())
    assert len(ais("storage", "mountpath", "ls", "-H").stdout.strip().splitlines()) == 6
    assert "mountpath /nope is not attached" in ais.fails("storage", "mountpath", "detach", tids[0], "/nope")

    timeouts = ais.json("show", "config", "cluster", "timeouts")
    assert "timeouts.control_s" in timeouts
    assert ais.json("config", "node", tids[0], "show", "timeouts") == timeouts
    assert "no config 'nope'" in ais.fails("config", "cluster", "show", "nope")
    assert "no node 'XXX'" in ais.fails("config", "node", "XXX", "show")
    # set-config: applied and shown, or the server's refusal as one line
    old = timeouts["timeouts.control_s"]
    r = ais("config", "cluster", "set", f"timeouts.control_s={old + 1}", rc=None)
    if r.returncode == 0:
        assert ais.json("config", "cluster", "show", "timeouts.control_s") == {"timeouts.control_s": old + 1}
        ais("config", "cluster", "set", f"timeouts.control_s={old}")
    else:
        assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and "config set" in r.stderr
    # membership changes the server does not support (or that name no such node) fail in one line
    assert "cluster add" in ais.fails("cluster", "add", "http://127.0.0.1:1")
    assert "set-primary" in ais.fails("cluster", "set-primary", "NoSuchProxy")
    assert "cluster rm" in ais.fails("cluster", "rm", "NoSuchNode", "-y")
    assert "no S3 access keys" in ais("s3", "keys", "ls").stdout


def test_archive_and_get_batch(ais: Runner, tmp_path: Any) -> None:
    b = f"ais://cli-a-{os.urandom(3).hex()}"
    ais("bucket", "create", b)
    src = str(tmp_path / "src")
    _tree(src, FILES)
    assert "ARCHIVE 6 files" in ais("archive", "put", src, b + "/shard.tar").stdout
    listed = ais.json("archive", "ls", b + "/shard.tar")
    assert sorted(e["name"] for e in listed if e["in_archive"]) == sorted(f"shard.tar/{n}" for n in FILES)
    assert ais("archive", "get", b + "/shard.tar", "-", "--archpath", "sub/h.txt").raw == b"hello\n"  # type: ignore[attr-defined]
    ais("archive", "get", b + "/shard.tar", str(tmp_path / "x"))
    assert all((tmp_path / "x" / n).read_bytes() == d for n, d in FILES.items())
    assert "cannot tell the archive format" in ais.fails("archive", "put", src, b + "/shard.bin")
    ais("put", "-r", src, b + "/objs/")
    assert "done (2 objects" in ais("archive", "put", b, b + "/srv.tar", "--list", "objs/f1.bin,objs/f2.bin",
                                    "--wait").stdout
    assert ais("archive", "get", b + "/srv.tar", "-", "--archpath", "objs/f2.bin").raw == FILES["f2.bin"]  # type: ignore[attr-defined]

    out = str(tmp_path / "batch.tar")
    assert "GET-BATCH 3 of 3 entries" in ais("ml", "get-batch", out, b + "/objs/f1.bin", b + "/objs/sub/h.txt",
                                             b + "/objs/f5.bin").stdout
    with tarfile.open(out) as t:
        bname = b.split("//")[1]
        assert t.getnames() == [f"{bname}/objs/f1.bin", f"{bname}/objs/sub/h.txt", f"{bname}/objs/f5.bin"]
        assert t.extractfile(f"{bname}/objs/f5.bin").read() == FILES["f5.bin"]  # type: ignore[union-attr]
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps([b + "/objs/f1.bin", {"obj": b + "/shard.tar", "archpath": "sub/h.txt"},
                                b + "/missing"]))
    r = ais("ml", "get-batch", "-", "--spec", str(spec), "--cont-on-err", "--only-obj-name")
    with tarfile.open(fileobj=io.BytesIO(r.raw)) as t:  # type: ignore[attr-defined]
        assert t.getnames() == ["objs/f1.bin", "shard.tar/sub/h.txt"]
    assert "warning" in r.stderr and "missing" in r.stderr
    assert "does not exist" in ais.fails("ml", "get-batch", str(tmp_path / "b2.tar"), b + "/missing")
    assert not os.path.exists(tmp_path / "b2.tar") and not os.path.exists(tmp_path / "b2.tar.ais-part")
    ais("bucket", "rm", b, "-y")


def test_etl_commands(ais: Runner, tmp_path: Any) -> None:
    b, dst, name = f"ais://cli-e-{os.urandom(3).hex()}", f"ais://cli-f-{os.urandom(3).hex()}", "cli-md5-etl"
    ais("bucket", "create", b)
    ais("put", "-", b + "/a.txt", stdin=b"hello\n")
    ais("put", "-", b + "/b.txt", stdin=b"world\n")
    try:
        assert "is running" in ais("etl", "init", "--name", name, "--image", "aistorage/transformer_md5").stdout
        assert "already exists" in ais.fails("etl", "init", "--name", name, "--image", "aistorage/transformer_md5")
        row = next(e for e in ais.json("etl", "ls") if e["id"] == name)
        assert row["stage"] == "Running"
        assert ais.json("etl", "show", name)["init_msg"]["runtime"]["image"] == "aistorage/transformer_md5"
        md5 = hashlib.md5(b"hello\n").hexdigest().encode()
        assert ais("etl", "object", name, b + "/a.txt", "-").raw == md5    # type: ignore[attr-defined]
        assert ais("get", b + "/a.txt", "-", "--etl", name).raw == md5       # type: ignore[attr-defined]
        assert "done (2 objects" in ais("etl", "bucket", name, b, dst, "--wait").stdout
        assert ais("object", "cat", dst + "/b.txt").raw == hashlib.md5(b"world\n").hexdigest().encode()  # type: ignore[attr-defined]
        assert ais("etl", "logs", name).stdout.count("===== t[") == 3
        assert "stopped" in ais("etl", "stop", name).stdout
        assert next(e for e in ais.json("etl", "ls") if e["id"] == name)["stage"] != "Running"
        assert "started" in ais("etl", "start", name).stdout
        assert "pass --yes" in ais.fails("etl", "rm", name)
        assert "removed" in ais("etl", "rm", name, "-y").stdout
        assert "does not exist" in ais.fails("etl", "show", name)
    finally:
        ais("etl", "rm", name, "-y", rc=None)
        ais("bucket", "rm", b, dst, "-y", "--ignore-error")


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


def test_progress_bars_on_a_terminal_only(ais: Runner, tmp_path: Any) -> None:
    b = f"ais://cli-p-{os.urandom(3).hex()}"
    ais("bucket", "create", b)
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
    ais("bucket", "rm", b, b + "-copy", "-y")


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


def test_completion_scripts(ais: Runner, tmp_path: Any) -> None:
    b = f"ais://cli-z-{os.urandom(3).hex()}"
    ais("bucket", "create", b)
    script = tmp_path / "ais.bash"
    script.write_text(ais("completion", "bash").stdout)
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    bindir = os.path.dirname(sys.executable)
    probe = f'''
source {script}
comp() {{ COMP_LINE="$1"; COMP_POINT=${{#1}}; read -ra COMP_WORDS <<< "$1"
  [[ "$1" == *" " ]] && COMP_WORDS+=(""); COMP_CWORD=$((${{#COMP_WORDS[@]}}-1)); _ais; echo "${{COMPREPLY[*]}}"; }}
comp "ais buc"; comp "ais bucket "; comp "ais bucket props s"; comp "ais ls --pr"; comp "ais ls {b[:-3]}"
'''
    r = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, timeout=60,
                       env={**ais.env, "PATH": f"{bindir}:{os.environ['PATH']}"})
    lines = r.stdout.splitlines()
    assert lines[0] == "bucket" and lines[1].split()[:3] == ["--help", "create", "rm"]
    assert lines[2] == "show set" and lines[3] == "--prefix --props"
    assert lines[4] == b[4:] + "/", r.stdout + r.stderr      # after the ':' bash splits at
    zsh = ais("completion", "zsh").stdout
    assert zsh.startswith("#compdef ais") and "bashcompinit" in zsh and "complete -o default -F _ais ais" in zsh
    if shutil.which("zsh"):
        (tmp_path / "_ais").write_text(zsh)
        assert subprocess.run(["zsh", "-n", str(tmp_path / "_ais")]).returncode == 0
    ais("bucket", "rm", b, "-y")


def test_remote_bucket_commands(make_cluster: Any, moto: Any, tmp_path: Any) -> None:
    c = make_cluster(proxies=1, targets=2, mountpaths=1, env=moto.env)
    ais = Runner(c.endpoint, str(tmp_path / "config"))
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
