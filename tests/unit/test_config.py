import json

import pytest

from ais import config
from ais.errors import BadRequest


def test_file_then_env_overrides(tmp_path) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / "c.json"
    p.write_text(json.dumps({"net": {"public_port": 1000}, "target": {"mountpaths": ["/a"]}}))
    cfg = config.load(str(p), {"AIS_NET_PUBLIC_PORT": "2000", "AIS_TARGET_FSYNC": "false",
                               "AIS_PRIMARY_EP": "http://x:1"})
    assert cfg.net.public_port == 2000
    assert cfg.target.mountpaths == ("/a",) and cfg.target.fsync is False
    assert cfg.proxy.primary_url == "http://x:1"


def test_unknown_and_invalid_values_are_rejected(tmp_path) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / "c.json"
    p.write_text(json.dumps({"net": {"nope": 1}}))
    with pytest.raises(BadRequest, match="nope"):
        config.load(str(p), {})
    with pytest.raises(BadRequest, match="public_port"):
        config.load(None, {"AIS_NET_PUBLIC_PORT": "abc"})


def test_config_is_frozen() -> None:
    cfg = config.load(None, {})
    with pytest.raises(AttributeError):
        cfg.net.public_port = 1  # type: ignore[misc]
    assert cfg.updated({"net.public_port": 5}).net.public_port == 5
