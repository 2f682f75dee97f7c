import pytest

from ais import names
from ais.errors import BadRequest, InvalidName


@pytest.mark.parametrize("bad", ["", "a b", "a/b", "x" * 65, "..", ".", "é", "a\x00"])
def test_invalid_bucket_names(bad: str) -> None:
    with pytest.raises(InvalidName):
        names.check_bucket_name(bad)


@pytest.mark.parametrize("bad", ["", "../x", "a/../b", "a/./b", "/abs", "a//b", "a\x00b", "x" * 1025,
                                 "a/" + "y" * 256, "dir/"])
def test_invalid_object_names(bad: str) -> None:
    with pytest.raises(InvalidName):
        names.check_object_name(bad)


@pytest.mark.parametrize("good", ["a", "a/b/c.jpg", "...", "a..b", "é/ü", "x" * 255, "sp ace", "%2e%2e"])
def test_valid_object_names(good: str) -> None:
    assert names.check_object_name(good) == good


def test_cname_and_uname() -> None:
    b = names.make_bucket("imgs", "s3", "")
    assert b.provider == "aws" and b.cname == "s3://imgs" and b.uname == "aws/@#/imgs/"
    n = names.make_bucket("imgs", "", "@u1#ns")
    assert n.cname == "ais://@u1#ns/imgs" and n.object_uname("o") == "ais/@u1#ns/imgs/o"


def test_parse_unames() -> None:
    assert names.parse_uname_bucket("ais/@#/dst/") == names.make_bucket("dst")
    bck, obj = names.parse_uname_object("ais/@#/dst/dir/o")
    assert bck.name == "dst" and obj == "dir/o"
    with pytest.raises(InvalidName):
        names.parse_uname_object("ais/@#/dst/../../x")


def test_parse_bool_go_forms() -> None:
    assert names.parse_bool("True") and names.parse_bool("t") and names.parse_bool("1")
    assert not names.parse_bool("False") and not names.parse_bool(None)
    with pytest.raises(BadRequest):
        names.parse_bool("maybe")
