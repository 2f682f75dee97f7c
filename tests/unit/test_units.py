import pytest

from ais.errors import BadRequest, TooManyRequests
from ais.names import Bucket, parse_duration_s, parse_size
from ais.ratelimit import TokenBucket
from proxy.ratelimit import RateLimiter


def test_parse_size() -> None:
    assert parse_size("1048576") == 1 << 20
    assert parse_size("128k") == 128 << 10
    assert parse_size("4mb") == parse_size("4MiB") == 4 << 20
    assert parse_size("") == 0
    with pytest.raises(BadRequest):
        parse_size("4 parsecs")


def test_parse_duration() -> None:
    assert parse_duration_s("2h0m") == 7200
    assert parse_duration_s("1m30s") == 90
    assert parse_duration_s("500ms") == 0.5
    assert parse_duration_s("0s") == 0
    with pytest.raises(ValueError):
        parse_duration_s("soon")


def test_token_bucket_burst_then_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr("ais.ratelimit.time.monotonic", lambda: now[0])
    tb = TokenBucket(rate_per_s=2, capacity=3)
    assert [tb.take() for _ in range(3)] == [0, 0, 0]
    assert tb.take() == pytest.approx(0.5)          # empty: the next token in 1/rate
    now[0] += 0.5
    assert tb.take() == 0


def test_rate_limiter_splits_across_proxies_and_follows_props() -> None:
    lim = RateLimiter()
    b = Bucket("b")
    props = {"rate_limit": {"frontend": {"enabled": True, "max_tokens": 4, "interval": "1m", "burst_size": 4}}}
    for _ in range(2):                               # 2 proxies: each takes half the burst
        lim.check(b, props, "GET", proxies=2)
    with pytest.raises(TooManyRequests) as exc:
        lim.check(b, props, "GET", proxies=2)
    assert int(exc.value.headers["Retry-After"]) >= 1
    lim.check(b, props, "PUT", proxies=2)           # per verb
    off = {"rate_limit": {"frontend": {"enabled": False}}}
    for _ in range(10):
        lim.check(b, off, "GET", proxies=2)
