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
