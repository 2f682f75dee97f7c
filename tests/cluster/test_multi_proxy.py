"""Several proxies: any of them serves the whole API; metadata changes go through the primary."""

import os

import pytest
import requests
from aistore import Client
from aistore.sdk.errors import ErrBckAlreadyExists


def test_any_proxy_serves_and_forwards_changes(make_cluster) -> None:  # type: ignore[no-untyped-def]
    c = make_cluster(proxies=3, targets=2, mountpaths=1)
    proxies = [n for n in c.spec.nodes if n.role == "proxy"]
    clients = [Client(p.public_url) for p in proxies]
    smap = clients[0].cluster().get_info()
    assert len(smap.pmap) == 3 and len(smap.tmap) == 2
    # a bucket created through a non-primary proxy is visible everywhere at once
    clients[2].bucket("via-p2").create()
    for cl in clients:
        assert "via-p2" in [b.name for b in cl.cluster().list_buckets()]
    with pytest.raises(ErrBckAlreadyExists):
        clients[1].bucket("via-p2").create()
    data = os.urandom(50_000)
    clients[1].bucket("via-p2").object("o").get_writer().put_content(data)
    for cl in clients:
        assert cl.bucket("via-p2").object("o").get_reader().read_all() == data
        assert [e.name for e in cl.bucket("via-p2").list_objects().entries] == ["o"]
    # every proxy has the same versions
    versions = {requests.get(f"{p.public_url}/v1/daemon?what=bmd", timeout=5).json()["version"] for p in proxies}
    assert len(versions) == 1
    # is_ready asks the primary, whichever proxy the client uses
    assert all(cl.cluster().is_ready() for cl in clients)
    clients[1].bucket("via-p2").delete()
    assert "via-p2" not in [b.name for b in clients[0].cluster().list_buckets()]
