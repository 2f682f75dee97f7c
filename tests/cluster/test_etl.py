"""ETL against a real cluster through the official SDK's `Etl` API (reference §6): init_class
transformers (FastAPI, Flask, HTTPMultiThreaded servers of `aistore.sdk.etl.webserver`) and
built-in images, inline GETs (native and S3) and pipelines, offline transforms of a bucket and
of a selection, every communicator, faults (crash, hang, errors), and the lifecycle: stop,
start, delete (every transformer process gone) and a cluster restart."""

from __future__ import annotations

import hashlib
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator

import pytest
import requests
from aistore import Client
from aistore.sdk.errors import AISError, ErrETLAlreadyExists, ErrETLNotFound
from aistore.sdk.etl import ETLConfig
from aistore.sdk.etl.webserver.fastapi_server import FastAPIServer
from aistore.sdk.etl.webserver.flask_server import FlaskServer
from aistore.sdk.etl.webserver.http_multi_threaded_server import HTTPMultiThreadedServer

from tests.cluster.conftest import Cluster


def _stats(cluster: Cluster) -> dict[str, dict[str, Any]]:
    """Per target: its running ETLs (state, restarts, pid) from the intra listener."""
    out = {}
    for t in cluster.targets:
        r = requests.get(f"http://127.0.0.1:{t.intra_port}/v1/etl/_t/stats", timeout=10)
        r.raise_for_status()
        out[t.name] = r.json()
    return out


def _pids(cluster: Cluster, name: str) -> list[int]:
    return [s[name]["pid"] for s in _stats(cluster).values() if name in s]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


def _put(bucket: Any, data: dict[str, bytes]) -> None:
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda kv: bucket.object(kv[0]).get_writer().put_content(kv[1]), data.items()))


@pytest.fixture
def etl_names(client: Client) -> Iterator[list[str]]:
    """ETLs a test creates: deleted afterwards (and their processes with them)."""
    made: list[str] = []
    yield made
    for name in made:
        try:
            client.etl(name).delete()
        except AISError:
            pass


def _upper_etl(client: Client, name: str, base: type = FastAPIServer, comm: str = "hpush", **kw: Any) -> Any:
    etl = client.etl(name)

    @etl.init_class(comm_type=comm, **kw)
    class Upper(base):  # type: ignore[misc, valid-type]
        """Upper-cases the object; etl_args are appended."""

        def transform(self, data: bytes, path: str, etl_args: str) -> bytes:
            return data.upper() + etl_args.encode()
    return etl


# --- init_class, inline GET, the API around them ---------------------------------------------

def test_class_transformer_inline_get_and_api(cluster: Cluster, client: Client, bucket: Any,
                                              etl_names: list[str]) -> None:
    name = "upper-" + os.urandom(3).hex()
    etl_names.append(name)
    etl = _upper_etl(client, name)
    data = {f"o/{i}": f"hello {i} ".encode() * 50 for i in range(12)}
    _put(bucket, data)

    # inline: every object (spread over the targets) through its own target's transformer
    for obj, content in data.items():
        assert bucket.object(obj).get_reader(etl=ETLConfig(name)).read_all() == content.upper()
    got = bucket.object("o/0").get_reader(etl=ETLConfig(name, args={"k": 1})).read_all()
    assert got == data["o/0"].upper() + b'{"k":1}'

    # list, show, health, metrics, logs
    listed = {e.id: e for e in client.cluster().list_etls()}
    assert listed[name].stage == "Running" and listed[name].obj_count >= 13
    details = etl.view()
    assert details.init_msg.name == name and details.init_msg.communication == "hpush://"
    assert isinstance(details.init_msg.runtime, object) and "runtime_python" in json.dumps(
        requests.get(f"{cluster.endpoint}/v1/etl/{name}", timeout=10).json()["init_msg"])
    health = requests.get(f"{cluster.endpoint}/v1/etl/{name}/health", timeout=10).json()
    assert sorted(h["target_id"] for h in health) == sorted(t.name for t in cluster.targets) or len(health) == 3
    assert all(h["health_status"] == "Running" for h in health)
    metrics = requests.get(f"{cluster.endpoint}/v1/etl/{name}/metrics", timeout=10).json()
    assert len(metrics) == 3 and all(m["mem"] > 0 for m in metrics)
    logs = etl.logs()
    assert len(logs) == 3 and all("Upper" in entry.logs or "Uvicorn" in entry.logs for entry in logs)
    one = etl.logs(target_id=logs[0].target_id)
    assert [e.target_id for e in one] == [logs[0].target_id]

    # the reference's errors: a second init 409, an unknown name 404, bad names 400
    with pytest.raises(ErrETLAlreadyExists):
        _upper_etl(client, name)
    with pytest.raises(ErrETLNotFound):
        client.etl("no-such-etl").view()
    with pytest.raises(ValueError):
        client.etl("ab")
    r = requests.put(f"{cluster.endpoint}/v1/etl", timeout=10,
                     json={"name": "Bad_Name", "communication": "hpush://", "runtime": {"image": "x"}})
    assert r.status_code == 400 and "invalid" in r.json()["message"]
    r = requests.put(f"{cluster.endpoint}/v1/etl", timeout=10,
                     json={"name": "wsnodput", "communication": "ws://", "runtime": {"image": "x"}})
    assert r.status_code == 400 and "direct put" in r.json()["message"]
    r = requests.get(f"{cluster.endpoint}/v1/objects/{bucket.name}/o/1?etl_name=no-such-etl", timeout=10)
    assert r.status_code == 404 and "no-such-etl does not exist" in r.json()["message"]

    # S3 GET names the ETL with the same query parameters
    r = requests.get(f"{cluster.endpoint}/s3/{bucket.name}/o/2?etl_name={name}&etl_args=!", timeout=10)
    assert r.status_code == 200 and r.content == data["o/2"].upper() + b"!"

    # stop: inline GETs refused, processes gone; start: back; delete: gone for good
    pids = _pids(cluster, name)
    assert len(pids) == 3 and all(_alive(p) for p in pids)
    etl.stop()
    assert {e.id: e.stage for e in client.cluster().list_etls(stages=["Running", "Aborted", "Initializing"])}[name] == "Aborted"
    assert not any(_alive(p) for p in pids)
    with pytest.raises(AISError, match="stopped"):
        bucket.object("o/1").get_reader(etl=ETLConfig(name)).read_all()
    etl.start()
    assert bucket.object("o/1").get_reader(etl=ETLConfig(name)).read_all() == data["o/1"].upper()
    pids = _pids(cluster, name)
    etl.delete()
    etl_names.remove(name)
    assert not any(_alive(p) for p in pids) and _pids(cluster, name) == []
    assert name not in {e.id for e in client.cluster().list_etls(stages=["Running", "Aborted", "Initializing"])}
    with pytest.raises(ErrETLNotFound):
        etl.view()


def test_image_without_local_command_is_a_clear_error(cluster: Cluster, client: Client) -> None:
    with pytest.raises(AISError) as ei:
        client.etl("noimage-etl").init(image="example.com/some/transformer:1.0")
    assert "has no local command" in str(ei.value) and "etl.images" in str(ei.value)
    assert "noimage-etl" not in {e.id for e in client.cluster().list_etls(stages=["Running", "Aborted", "Initializing"])}


# --- offline ------------------------------------------------------------------------------------

def test_offline_md5_of_1000_objects_into_new_bucket(cluster: Cluster, client: Client, bucket: Any,
                                                     etl_names: list[str]) -> None:
    name = "md5-" + os.urandom(3).hex()
    etl_names.append(name)
    client.etl(name).init(image="aistorage/transformer_md5:latest", direct_put=True)
    data = {f"d/{i:04d}.bin": os.urandom(1 + i * 13 % 3000) for i in range(1000)}
    _put(bucket, data)
    _put(bucket, {"other/skip.bin": b"not under the prefix"})
    dst = client.bucket("md5out-" + os.urandom(3).hex())
    try:
        job_id = bucket.transform(name, dst, prefix_filter="d/", ext={"bin": "md5"}, num_workers=8)
        client.job(job_id).wait(timeout=120)
        listed = {e.name for e in dst.list_all_objects()}
        assert listed == {n.replace(".bin", ".md5") for n in data}
        def check(item: tuple[str, bytes]) -> bool:
            obj, content = item
            got = dst.object(obj.replace(".bin", ".md5")).get_reader().read_all()
            return got == hashlib.md5(content).hexdigest().encode()
        with ThreadPoolExecutor(8) as pool:
            assert all(pool.map(check, data.items()))   # every output checked
        # a dry run writes nothing
        job_id = bucket.transform(name, bucket, prefix_filter="d/00", dry_run=True)
        client.job(job_id).wait(timeout=60)
        assert len(bucket.list_all_objects(prefix="d/")) == 1000
    finally:
        dst.delete(missing_ok=True)


# --- pipelines and communicators ---------------------------------------------------------------

def test_pipeline_of_two_etls_inline_and_offline(cluster: Cluster, client: Client, bucket: Any,
                                                 etl_names: list[str]) -> None:
    up, md5 = "pupper-" + os.urandom(3).hex(), "pmd5-" + os.urandom(3).hex()
    etl_names += [up, md5]
    upper = _upper_etl(client, up)
    md5_etl = client.etl(md5)
    md5_etl.init(image="aistorage/transformer_md5")
    data = {f"p/{i}": os.urandom(64).hex().encode() for i in range(6)}
    _put(bucket, data)
    for obj, content in data.items():
        got = bucket.object(obj).get_reader(etl=ETLConfig(upper >> md5_etl)).read_all()
        assert got == hashlib.md5(content.upper()).hexdigest().encode()
    dst = client.bucket("pipeout-" + os.urandom(3).hex())
    try:
        job_id = bucket.objects(obj_names=list(data)).transform(to_bck=dst, etl_name=up, etl_pipeline=[md5])
        client.job(job_id).wait(timeout=60)
        for obj, content in data.items():
            assert dst.object(obj).get_reader().read_all() == hashlib.md5(content.upper()).hexdigest().encode()
    finally:
        dst.delete(missing_ok=True)


@pytest.mark.parametrize("server,comm", [(FlaskServer, "hpull"), (HTTPMultiThreadedServer, "hpush"),
                                         (FastAPIServer, "ws")])
def test_sdk_servers_and_communicators(client: Client, bucket: Any, etl_names: list[str], server: type,
                                       comm: str) -> None:
    name = f"{comm}-{server.__name__[:5].lower()}-{os.urandom(2).hex()}"
    etl_names.append(name)
    _upper_etl(client, name, base=server, comm=comm, direct_put=True)
    data = {f"c/{i}": os.urandom(3000 + i) for i in range(6)}
    _put(bucket, data)
    for obj, content in data.items():
        assert bucket.object(obj).get_reader(etl=ETLConfig(name)).read_all() == content.upper()
    dst = client.bucket("commout-" + os.urandom(3).hex())
    try:   # offline: the transformer delivers to other targets itself (direct put)
        job_id = bucket.transform(name, dst, prefix_filter="c/")
        client.job(job_id).wait(timeout=60)
        for obj, content in data.items():
            assert dst.object(obj).get_reader().read_all() == content.upper()
    finally:
        dst.delete(missing_ok=True)


# --- faults -----------------------------------------------------------------------------------

def test_crashing_transformer_is_restarted(cluster: Cluster, client: Client, bucket: Any,
                                           etl_names: list[str]) -> None:
    name = "crashy-" + os.urandom(3).hex()
    etl_names.append(name)
    etl = client.etl(name)

    @etl.init_class(obj_timeout="20s")
    class Crashy(FastAPIServer):
        def transform(self, data: bytes, path: str, etl_args: str) -> bytes:
            if path.endswith("crash"):
                os._exit(3)
            return data[::-1]
    _put(bucket, {"x/crash": b"boom", "x/fine": b"abc"})
    with pytest.raises(AISError) as ei:
        bucket.object("x/crash").get_reader(etl=ETLConfig(name)).read_all()
    msg = str(ei.value)
    assert name in msg and "x/crash" in msg
    # the supervisor restarts it (asynchronously: wait for it to report running again)
    deadline = time.monotonic() + 20
    while not (sum(s[name]["restarts"] for s in _stats(cluster).values()) >= 1
               and all(s[name]["state"] == "running" for s in _stats(cluster).values())):
        assert time.monotonic() < deadline, _stats(cluster)
        time.sleep(0.1)
    assert bucket.object("x/fine").get_reader(etl=ETLConfig(name)).read_all() == b"cba"
    assert bucket.object("x/crash").get_reader().read_all() == b"boom"   # the object itself is fine
    owner_logs = "".join(e.logs for e in etl.logs())
    assert "exited with status 3" in owner_logs and "restart #1" in owner_logs
    errors = etl.view().obj_errors or []
    assert any(e.obj_name == "x/crash" for e in errors)


def test_hanging_and_failing_transformer(cluster: Cluster, client: Client, bucket: Any,
                                         etl_names: list[str]) -> None:
    name = "faulty-" + os.urandom(3).hex()
    etl_names.append(name)
    etl = client.etl(name)

    @etl.init_class(obj_timeout="2s")
    class Faulty(FastAPIServer):
        def transform(self, data: bytes, path: str, etl_args: str) -> bytes:
            if path.endswith("hang"):
                import time as t
                t.sleep(4)   # past the 2 s timeout (it blocks this server: keep it short)
            if path.endswith("bad"):
                raise ValueError("cannot transform this one")
            return data + b"!"
    _put(bucket, {"f/hang": b"h", "f/bad": b"b", "f/ok1": b"1", "f/ok2": b"2"})
    started = time.monotonic()
    with pytest.raises(AISError) as ei:
        bucket.object("f/hang").get_reader(etl=ETLConfig(name)).read_all()
    assert time.monotonic() - started < 15
    assert name in str(ei.value) and "f/hang" in str(ei.value) and "timeout" in str(ei.value)
    time.sleep(max(0.0, started + 4.5 - time.monotonic()))   # the hung transform holds that server till then
    with pytest.raises(AISError) as ei:
        bucket.object("f/bad").get_reader(etl=ETLConfig(name)).read_all()
    assert "cannot transform this one" in str(ei.value) and "f/bad" in str(ei.value)

    # offline with continue-on-error: the good ones land, the bad one is an object error
    dst = client.bucket("faultout-" + os.urandom(3).hex())
    try:
        job_id = bucket.objects(obj_names=["f/bad", "f/ok1", "f/ok2"]).transform(
            to_bck=dst, etl_name=name, continue_on_error=True)
        client.job(job_id).wait(timeout=60)
        assert dst.object("f/ok1").get_reader().read_all() == b"1!"
        assert dst.object("f/ok2").get_reader().read_all() == b"2!"
        errors = etl.view(job_id=job_id).obj_errors or []
        assert [e.obj_name for e in errors] == ["f/bad"] and "cannot transform" in errors[0].msg
        # without it, the job fails, naming the object
        job_id = bucket.transform(name, dst, prefix_filter="f/b")
        result = client.job(job_id).wait(timeout=60)
        assert not result.success and "f/bad" in (result.error or "")
        assert [e.obj_name for e in etl.view(job_id=job_id).obj_errors or []] == ["f/bad"]
    finally:
        dst.delete(missing_ok=True)


# --- persistence --------------------------------------------------------------------------------

def test_etl_survives_cluster_restart(make_cluster: Any) -> None:
    c = make_cluster(proxies=1, targets=2, mountpaths=1)
    client = Client(c.endpoint)
    b = client.bucket("keep")
    b.create()
    b.object("a").get_writer().put_content(b"persist me")
    client.etl("keepmd5").init(image="aistorage/transformer_md5")
    c.restart_all()
    deadline = time.monotonic() + 30
    while True:
        try:
            got = client.bucket("keep").object("a").get_reader(etl=ETLConfig("keepmd5")).read_all()
            break
        except AISError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    assert got == hashlib.md5(b"persist me").hexdigest().encode()
    assert {e.id for e in client.cluster().list_etls()} == {"keepmd5"}
