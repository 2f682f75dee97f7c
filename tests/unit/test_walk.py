import os
import random

from target.fs.walk import walk_sorted


def test_walk_yields_byte_order_and_prunes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(3)
    root = str(tmp_path)
    made = set()
    for _ in range(400):
        parts = [rng.choice(["a", "a-b", "a.c", "b", "ab", "z", "é"]) for _ in range(rng.randint(1, 3))]
        name = "/".join(parts) + str(rng.randint(0, 9))
        try:
            os.makedirs(os.path.join(root, os.path.dirname(name)), exist_ok=True)
            open(os.path.join(root, name), "w").close()
            made.add(name)
        except OSError:
            pass  # a file already stands where a directory must go
    made = {n for n in made if os.path.isfile(os.path.join(root, n))}
    expected = sorted(made, key=lambda s: s.encode())
    assert [n for n, _ in walk_sorted(root)] == expected
    for after in rng.sample(expected, 25):
        for prefix in ["", "a", "a/", "a-b", "z/é", "nope"]:
            got = [n for n, _ in walk_sorted(root, prefix, after)]
            assert got == [n for n in expected if n > after and n.startswith(prefix)]
