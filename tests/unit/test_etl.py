"""ETL pieces in-process: the init message and its validation, the ETL metadata document, image
mapping, destination names, the built-in transforms, the transformer server's contract (hpush
with bytes or a path, hpull, WebSocket, pipelines), and the local runtime's start errors."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import sys
from typing import Any

import aiohttp
import pytest
import zstandard
from aiohttp.test_utils import TestServer

from ais.errors import BadRequest
from ais.etl import COMM_HPUSH, EtlEntry, EtlMD, InitMsg, TransformFailed, validate_name
from etl import images
from etl.local import LocalTransformer, TransformerStartError, free_port
from etl.server import TransformError, direct_put_url
from etl.transformers.echo import Echo
from etl.transformers.image import ImageTransform
from etl.transformers.md5 import Md5
from etl.transformers.tokenize import Tokenize
from etl.transformers.zstd import Zstd
from target.jobs.etl import map_name

pytestmark = pytest.mark.timeout(60)


def _msg(**kw: Any) -> dict[str, Any]:
    return {"name": "my-etl", "communication": "hpush://", "runtime": {"image": "aistorage/transformer_md5"}, **kw}


# --- the init message ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["abcdef", "a-b-c-d", "x" * 32, "md5-01"])
def test_valid_names(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize("name,why", [("abc", "too short"), ("x" * 33, "too long"), ("Upper-case", "invalid"),
                                      ("trailing-", "invalid"), ("-leading", "invalid"), ("under_score", "invalid")])
def test_invalid_names(name: str, why: str) -> None:
    with pytest.raises(BadRequest, match=why):
        validate_name(name)


def test_init_message_parsed_with_sdk_shapes_and_defaults() -> None:
    m = InitMsg.parse(_msg(init_timeout="5m", obj_timeout="45s", support_direct_put=True,
                           runtime={"image": "img:1", "command": ["python", "x.py"],
                                    "env": [{"name": "A", "value": "1"}]}, env=[{"name": "B", "value": 2}]))
    assert (m.comm, m.image, m.command, m.direct_put) == (COMM_HPUSH, "img:1", ("python", "x.py"), True)
    assert (m.init_timeout_s, m.obj_timeout_s) == (300.0, 45.0)
    assert m.env_map == {"A": "1", "B": "2"}
    d = InitMsg.parse({"name": "defaults", "communication": "hpull", "runtime": {"image": "i"}})
    assert (d.comm, d.init_timeout_s, d.obj_timeout_s, d.command) == ("hpull://", 45.0, 10.0, ())


@pytest.mark.parametrize("msg,why", [
    (_msg(communication="carrier-pigeon://"), "unknown communication"),
    (_msg(communication="ws://"), "requires direct put"),
    (_msg(runtime={}), "runtime.image"),
    (_msg(obj_timeout="soon"), "invalid obj_timeout"),
    (_msg(runtime={"image": "i", "env": [{"value": "no name"}]}), "needs a name"),
    (_msg(spec="cG9k"), "not supported"),
    ([1, 2], "JSON object"),
])
def test_init_message_rejections(msg: Any, why: str) -> None:
    with pytest.raises(BadRequest, match=why):
        InitMsg.parse(msg)


def test_etl_metadata_round_trip_and_versions() -> None:
    md = EtlMD(version=3)
    entry = EtlEntry(msg=_msg(), stage="Running", secret="s3cr3t", job_id="j1")
    md2 = md.with_etl("my-etl", entry)
    assert md2.version == 4 and md2.get("my-etl") == entry and md.get("my-etl") is None
    back = EtlMD.from_wire(json.loads(json.dumps(md2.to_wire())))
    assert back == md2 and back.get("my-etl").init.name == "my-etl"  # type: ignore[union-attr]
    assert md2.without("my-etl").version == 5 and not md2.without("my-etl").etls


def test_transform_failure_names_etl_and_object() -> None:
    exc = TransformFailed("my-etl", "ais://b/o", "boom", ecode=502)
    assert exc.status == 424 and exc.ecode == 502
    assert "my-etl" in exc.message and "ais://b/o" in exc.message and "boom" in exc.message


# --- images, names -------------------------------------------------------------------------------

def test_image_mapping() -> None:
    assert images.command_for("aistorage/runtime_python:3.11", (), ()) == ["python", "-m", "etl.bootstrap"]
    assert images.command_for("aistorage/transformer_md5:latest", (), ())[-1] == "etl.transformers.md5"
    # configured entries win, an explicit command replaces the mapped one
    assert images.command_for("aistorage/transformer_md5", (), ["aistorage/transformer_md5=my md5"]) == ["my", "md5"]
    assert images.command_for("me/img:2", ["run", "it"], ["me/img=python -m x"]) == ["run", "it"]
    assert images.command_for("me/img:2", (), ["me/img:2=a b"]) == ["a", "b"]
    with pytest.raises(images.UnknownImage, match="etl.images"):
        images.command_for("me/img:2", (), ["me/img:3=a"])
    with pytest.raises(ValueError, match="IMAGE=COMMAND"):
        images.command_for("x", (), ["no-equals-sign"])
    argv = images.substitute(["python", "srv.py", "--host", "0.0.0.0", "--port", "8000", "--x={port}"],
                             "127.0.0.1", 4321, python="/py")
    assert argv == ["/py", "srv.py", "--host", "127.0.0.1", "--port", "4321", "--x=4321"]


def test_destination_names() -> None:
    assert map_name("a/b.jpg", "", {"jpg": "png"}) == "a/b.png"
    assert map_name("a/b.jpg", "out/", {}) == "out/a/b.jpg"
    assert map_name("a/b.tar.gz", "", {"gz": "zst"}) == "a/b.tar.zst"
    assert map_name("noext", "", {"jpg": "png"}) == "noext"
    assert map_name(".hidden", "", {"hidden": "x"}) == ".hidden"


def test_direct_put_urls() -> None:
    host = "http://10.0.0.1:9/v1/etl/_object/e/sec"
    # a pipeline stage: no path of its own, the object's path is appended
    assert direct_put_url("http://127.0.0.1:7000", host, "b/o 1", "") == "http://127.0.0.1:7000/b/o%201"
    # a target: our AIS_TARGET_URL prefix, then its path and query; etl_args forwarded
    url = direct_put_url("http://10.0.0.2:9/b2/x?provider=ais", host, "b/o", "k=v")
    assert url == "http://10.0.0.2:9/v1/etl/_object/e/sec/b2/x?provider=ais&etl_args=k%3Dv"


# --- built-in transforms ---------------------------------------------------------------------------

def test_builtin_transforms() -> None:
    data = b"The quick brown fox, jumps!" * 10
    assert Md5().transform(data, "b/o", "") == hashlib.md5(data).hexdigest().encode()
    assert Echo().transform(data, "b/o", "") == data
    z = Zstd()
    packed = z.transform(data, "b/o", "compress:5")
    assert zstandard.ZstdDecompressor().decompressobj().decompress(packed) == data
    assert z.transform(packed, "b/o", "decompress") == data
    with pytest.raises(TransformError, match="not zstd"):
        z.transform(b"plain", "b/o", "decompress")
    assert json.loads(Tokenize().transform(b"Hello, World! hello", "b/o", "")) == ["hello", ",", "world", "!", "hello"]
    ids = json.loads(Tokenize().transform(b"a b a", "b/o", "ids:10"))
    assert len(ids) == 3 and ids[0] == ids[2] and all(0 <= i < 10 for i in ids)
    with pytest.raises(TransformError):
        Tokenize().transform(b"\xff\xfe", "b/o", "")


def test_image_transform() -> None:
    from PIL import Image
    src = io.BytesIO()
    Image.new("RGB", (64, 32), (10, 20, 30)).save(src, format="PNG")
    out = ImageTransform().transform(src.getvalue(), "b/i.png", "resize=16x8,normalize,format=jpeg")
    img = Image.open(io.BytesIO(out))
    assert img.size == (16, 8) and img.format == "JPEG"
    thumb = Image.open(io.BytesIO(ImageTransform().transform(src.getvalue(), "b/i.png", "fit=20,gray")))
    assert thumb.size == (20, 10) and thumb.mode == "L"
    for bad in ("resize=axb", "fit=-1", "explode"):
        with pytest.raises(TransformError):
            ImageTransform().transform(src.getvalue(), "b/i.png", bad)
    with pytest.raises(TransformError, match="not an image"):
        ImageTransform().transform(b"nope", "b/i.png", "")


# --- the transformer server's contract ----------------------------------------------------------

def test_transformer_server_contract(tmp_path: Any) -> None:
    path = tmp_path / "obj"
    path.write_bytes(b"from disk")

    async def main() -> None:
        md5_srv, echo_srv = TestServer(Md5().app()), TestServer(Echo().app())
        await md5_srv.start_server()
        await echo_srv.start_server()
        md5_url, echo_url = str(md5_srv.make_url("")).rstrip("/"), str(echo_srv.make_url("")).rstrip("/")
        try:
            async with aiohttp.ClientSession() as s:
                async with s.get(f"{md5_url}/health") as r:
                    assert r.status == 200 and await r.text() == "Running"
                async with s.put(f"{md5_url}/b/o", data=b"bytes") as r:   # hpush, bytes
                    assert await r.read() == hashlib.md5(b"bytes").hexdigest().encode()
                async with s.put(f"{md5_url}/b/o", params={"etl_fqn": str(path)}) as r:   # hpush, a path
                    assert await r.read() == hashlib.md5(b"from disk").hexdigest().encode()
                async with s.get(f"{echo_url}/b/o", params={"etl_fqn": str(path)}) as r:   # hpull, a path
                    assert await r.read() == b"from disk"
                async with s.put(f"{echo_url}/b/o", params={"etl_fqn": str(tmp_path / "gone")}) as r:
                    assert r.status == 404 and "file not found" in await r.text()
                # pipeline: echo forwards to md5, whose answer comes back
                async with s.put(f"{echo_url}/b/o", data=b"chain", headers={"Ais-Node-Url": md5_url}) as r:
                    assert await r.read() == hashlib.md5(b"chain").hexdigest().encode()
                # WebSocket: control message, then bytes (or a path)
                async with s.ws_connect(f"{md5_url}/ws") as ws:
                    await ws.send_bytes(json.dumps({"path": "b/o", "fqn": "", "etl_args": "", "pipeline": ""}).encode())
                    await ws.send_bytes(b"ws bytes")
                    assert await ws.receive_bytes() == hashlib.md5(b"ws bytes").hexdigest().encode()
                    await ws.send_bytes(json.dumps({"path": "b/o", "fqn": str(path)}).encode())
                    assert await ws.receive_bytes() == hashlib.md5(b"from disk").hexdigest().encode()
        finally:
            await md5_srv.close()
            await echo_srv.close()
    asyncio.run(main())


# --- the local runtime -------------------------------------------------------------------------

def test_local_runtime_start_failure_shows_output(tmp_path: Any) -> None:
    async def main() -> None:
        async with aiohttp.ClientSession() as s:
            t = LocalTransformer("broken", [sys.executable, "-c", "print('no such module, sorry'); raise SystemExit(2)"],
                                 dict(os.environ), str(tmp_path), "127.0.0.1", free_port("127.0.0.1"), s)
            with pytest.raises(TransformerStartError, match="status 2") as ei:
                await t.start(20)
            assert "no such module, sorry" in str(ei.value) and t.pid is None
    asyncio.run(main())


def test_local_runtime_serves_and_stops(tmp_path: Any) -> None:
    async def main() -> None:
        async with aiohttp.ClientSession() as s:
            port = free_port("127.0.0.1")
            env = {**os.environ, "PYTHONPATH": os.getcwd()}
            t = LocalTransformer("echo", [sys.executable, "-m", "etl.transformers.echo", "--port", str(port)], env,
                                 str(tmp_path), "127.0.0.1", port, s)
            await t.start(30)
            try:
                assert await t.health() == "Running" and t.pid is not None
                async with s.put(f"{t.url}/b/o", data=b"echo me") as r:
                    assert await r.read() == b"echo me"
                assert (await t.usage())["mem"] > 0
            finally:
                pid = t.pid
                await t.stop()
            assert t.pid is None and pid is not None
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
            assert "Echo listening" in (await t.logs()).decode()
    asyncio.run(main())
