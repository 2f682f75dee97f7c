import pytest

from ais.errors import BadMessage, BadRequest
from ais.template import expand, parse_selection


def test_expand_padding_and_step() -> None:
    assert list(expand("obj-{0000..0003}.tar")) == ["obj-0000.tar", "obj-0001.tar", "obj-0002.tar", "obj-0003.tar"]
    assert list(expand("x{0..10..5}")) == ["x0", "x5", "x10"]
    assert list(expand("a{1..2}/b{01..02}")) == ["a1/b01", "a1/b02", "a2/b01", "a2/b02"]
    assert list(expand("plain")) == ["plain"]


@pytest.mark.parametrize("bad", ["x{3..1}", "x{0..5..0}", "x{0..3", "x{a..b}"])
def test_expand_rejects(bad: str) -> None:
    with pytest.raises(BadRequest):
        list(expand(bad))


def test_selection_kinds() -> None:
    assert parse_selection({"objnames": ["a", "b"]}).names == ("a", "b")
    s = parse_selection({"template": "t-{0..2}"})
    assert list(s.listed() or []) == ["t-0", "t-1", "t-2"]
    p = parse_selection({"template": "dir/"})
    assert p.prefix == "dir/" and p.listed() is None
    assert parse_selection({}).everything
    with pytest.raises(BadMessage):
        parse_selection({"objnames": "a"})
    with pytest.raises(BadRequest):
        parse_selection({"template": "x{9..1}"})
