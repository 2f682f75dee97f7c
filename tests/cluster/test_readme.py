"""The README's first-steps example runs as written against a real cluster."""

import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_readme_first_steps_example(cluster, client) -> None:  # type: ignore[no-untyped-def]
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    block = re.search(r"## First steps.*?```python\n(.*?)```", text, re.S)
    assert block, "README lost its first-steps example"
    code = block.group(1).replace("http://127.0.0.1:8080", cluster.endpoint)
    exec(compile(code, "README.md", "exec"), {})  # noqa: S102 - our own documentation
    assert client.bucket("datasets").object("train/0001.jpg").get_reader().read_all() == b"...jpeg bytes..."
    client.bucket("datasets").delete()


def test_readme_cloud_bucket_example(remote_cluster, moto) -> None:  # type: ignore[no-untyped-def]
    from aistore import Client
    from aistore.sdk.list_object_flag import ListObjectFlag
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    block = re.search(r"## Cloud buckets.*?```python\n(.*?)```", text, re.S)
    assert block, "README lost its cloud-bucket example"
    s3 = moto.client()
    s3.create_bucket(Bucket="my-training-data")
    for i in range(100):
        s3.put_object(Bucket="my-training-data", Key=f"shard-{i:04d}.tar", Body=b"tar bytes %d" % i)
    code = block.group(1).replace("http://127.0.0.1:8080", remote_cluster.endpoint)
    scope: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), scope)  # noqa: S102 - our own documentation
    client = Client(remote_cluster.endpoint)
    bck = client.bucket("my-training-data", provider="aws")
    cached = [e.name for e in bck.list_all_objects(flags=[ListObjectFlag.CACHED])]
    assert cached == [f"shard-{i:04d}.tar" for i in range(50, 100)]
