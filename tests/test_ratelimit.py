"""netboot.ratelimit: the one token bucket, on a stepped clock."""

from __future__ import annotations

from netboot.ratelimit import TokenBucket, TokenBuckets


def test_bucket_starts_full_and_refills_at_its_rate() -> None:
    bucket = TokenBucket(rate=2.0, burst=3.0, now=0.0)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.take(0.25) is False  # half a token back
    assert bucket.take(0.5) is True  # one token back
    assert bucket.take(100.0) and bucket.tokens == 2.0  # capped at the burst, one taken


def test_keys_have_their_own_buckets() -> None:
    buckets: TokenBuckets[str] = TokenBuckets(rate=1.0, burst=1.0, max_keys=10)
    assert buckets.allow("a", 0.0) and not buckets.allow("a", 0.5)
    assert buckets.allow("b", 0.5)
    assert buckets.allow("a", 1.5)


def test_at_the_cap_full_buckets_go_first_uncounted_then_the_least_recent() -> None:
    buckets: TokenBuckets[int] = TokenBuckets(rate=1.0, burst=2.0, max_keys=3)
    for key in (1, 2, 3):
        buckets.allow(key, 0.0)
    buckets.allow(1, 1.0)  # 1 is now the most recent
    buckets.allow(4, 1.5)  # nothing idle 2 s yet: 2 (least recent) is evicted
    assert buckets.keys() == [3, 1, 4] and buckets.take_evicted() == 1
    buckets.allow(5, 3.0)  # 3 has been idle 3 s (full again): dropped, not counted
    assert buckets.keys() == [1, 4, 5] and buckets.take_evicted() == 0


def test_expire_forgets_idle_buckets_in_time_order() -> None:
    buckets: TokenBuckets[str] = TokenBuckets(rate=1.0, burst=1.0, max_keys=10)
    buckets.allow("old", 0.0)
    buckets.allow("new", 30.0)
    buckets.expire(61.0, idle=60.0)
    assert buckets.keys() == ["new"]


def test_reconfigure_keeps_tokens_within_the_new_burst() -> None:
    buckets: TokenBuckets[str] = TokenBuckets(rate=1.0, burst=10.0, max_keys=10)
    for key in "abc":
        buckets.allow(key, 0.0)
    buckets.reconfigure(rate=0.5, burst=2.0, max_keys=2)
    assert buckets.keys() == ["b", "c"] and buckets.take_evicted() == 1
    assert [buckets.allow("b", 0.0) for _ in range(3)] == [True, True, False]
    assert buckets.allow("b", 2.0) and not buckets.allow("b", 2.0)  # 0.5 a second now
