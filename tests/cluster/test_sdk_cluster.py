"""Cluster metadata through the official SDK: cluster map, primary, readiness, daemon queries."""

import requests


def test_cluster_info_primary_and_ready(cluster, client) -> None:  # type: ignore[no-untyped-def]
    smap = client.cluster().get_info()
    assert len(smap.tmap) == 3 and len(smap.pmap) == 1
    assert smap.version >= 4 and smap.uuid
    assert client.cluster().get_primary_url() == cluster.endpoint
    assert client.cluster().is_ready()
    for t in smap.tmap.values():
        assert t.id_digest and t.public_net.direct_url.startswith("http://127.0.0.1:")


def test_every_node_has_the_same_cluster_map(cluster, client) -> None:  # type: ignore[no-untyped-def]
    primary = client.cluster().get_info()
    for node in cluster.spec.nodes:
        smap = requests.get(f"{node.public_url}/v1/daemon", params={"what": "smap"}, timeout=5).json()
        assert int(smap["version"]) == primary.version
        assert set(smap["tmap"]) == set(primary.tmap)
        assert smap["proxy_si"]["daemon_id"] == primary.proxy_si.daemon_id


def test_daemon_queries_have_reference_shapes(cluster) -> None:  # type: ignore[no-untyped-def]
    ep = cluster.endpoint
    bmd = requests.get(f"{ep}/v1/daemon", params={"what": "bmd"}, timeout=5).json()
    assert set(bmd) >= {"providers", "uuid", "version"} and isinstance(bmd["version"], str)
    snode = requests.get(f"{ep}/v1/daemon", params={"what": "snode"}, timeout=5).json()
    assert snode["daemon_type"] == "proxy" and snode["public_net"]["direct_url"] == ep
    cfg = requests.get(f"{ep}/v1/daemon", params={"what": "config"}, timeout=5).json()
    assert cfg["net"]["public_port"] == int(ep.rsplit(":", 1)[1])
    h = requests.get(f"{ep}/v1/health", timeout=5)
    assert h.status_code == 200 and int(h.headers["Ais-Node-Uptime"]) > 0
    bad = requests.get(f"{ep}/v1/daemon", params={"what": "nonsense"}, timeout=5)
    assert bad.status_code == 400 and "nonsense" in bad.json()["message"]


def test_metrics_in_prometheus_format(cluster, bucket) -> None:  # type: ignore[no-untyped-def]
    bucket.object("m").get_writer().put_content(b"abc")
    bucket.object("m").get_reader().read_all()
    for node in cluster.spec.nodes:
        text = requests.get(f"{node.public_url}/metrics", timeout=5).text
        assert "ais_requests_total" in text and "ais_request_latency_seconds_bucket" in text
    # the owner target counted the PUT bytes
    totals = [requests.get(f"{t.public_url}/metrics", timeout=5).text for t in cluster.targets]
    assert any('ais_bytes_received_total{verb="PUT"}' in t for t in totals)
    ptext = requests.get(f"{cluster.endpoint}/metrics", timeout=5).text
    assert 'verb="GET"' in ptext
