"""series.per_minute with a cache: a queue whose metrics hashes and current minute are as
they were gives its last answer without reading its per-minute lists again; any change (a
job finished, a new minute) reads them again, and every answer is what an uncached read gives."""

from __future__ import annotations

import redis

from dashboard import series
from dashboard.keys import Keys

MINUTE = 60_000
NOW = 1_700_000_000_000 // MINUTE * MINUTE + 30_000


def record(r: redis.Redis, k: Keys, status: str, per_minute: list[int], prev_ts: int, count: int) -> None:
    r.delete(k.metrics(status, data=True))
    r.rpush(k.metrics(status, data=True), *per_minute)
    r.hset(k.metrics(status), mapping={"count": count, "prevCount": count - 3, "prevTS": prev_ts})


def lranges(r: redis.Redis) -> int:
    return int(r.info("commandstats").get("cmdstat_lrange", {}).get("calls", 0))


def test_lists_are_read_again_only_when_the_metrics_moved_on(r: redis.Redis) -> None:
    mail, sms, idle = Keys("bull", "mail"), Keys("bull", "sms"), Keys("bull", "idle")
    record(r, mail, "completed", [5, 4, 3, 2, 1], NOW - 10_000, 100)
    record(r, mail, "failed", [1, 0, 1], NOW - 10_000, 7)
    r.set(sms.metrics("completed", data=True), "not a list")
    r.hset(sms.metrics("completed"), mapping={"count": 9, "prevCount": 9, "prevTS": NOW - 10_000})
    queues = [mail, sms, idle]
    cache: series.SeriesCache = {}
    plain = series.per_minute(r, queues, 10, NOW)
    assert series.per_minute(r, queues, 10, NOW, cache) == plain
    assert plain[0].completed[-6:] == [1, 2, 3, 4, 5, 3] and plain[1].problems and not plain[2].recorded

    r.config_resetstat()
    assert series.per_minute(r, queues, 10, NOW, cache) == plain
    assert lranges(r) == 2  # sms only: a list of another type is read (and told) every time

    r.hincrby(mail.metrics("completed"), "count", 2)  # two more jobs this minute
    r.config_resetstat()
    again = series.per_minute(r, queues, 10, NOW, cache)
    assert again == series.per_minute(r, queues, 10, NOW) != plain and again[0].completed[-1] == 5
    assert lranges(r) == 2 + 2 + 6  # mail's two lists, sms's two, then the uncached read's six

    # a new minute: the worker pushes the last one's count and moves prevTS on
    r.lpush(mail.metrics("completed", data=True), 5)
    r.hset(mail.metrics("completed"), mapping={"count": 110, "prevCount": 105, "prevTS": NOW + MINUTE})
    later = NOW + MINUTE
    assert series.per_minute(r, queues, 10, later, cache) == series.per_minute(r, queues, 10, later)
    # the same hashes, but the clock moved to the next minute: read again, lined up anew
    assert series.per_minute(r, queues, 10, later + MINUTE, cache) == series.per_minute(r, queues, 10,
                                                                                          later + MINUTE)
