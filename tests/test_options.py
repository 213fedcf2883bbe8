"""add()'s options worked out once per set of keywords (dashboard.options): the same answer as
working them out afresh, never a wrong one from a look-alike key, each job its own opts."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
import redis

from dashboard import Queue, options
from dashboard.job import build_opts


@pytest.fixture
def q(r: redis.Redis) -> Queue:
    options._seen.clear()
    return Queue("opts", connection=r)


def test_remembered_options_are_refused_or_accepted_by_type_not_by_equality(q: Queue, r: redis.Redis) -> None:
    q.add("x", {}, priority=1)  # remembered: ("priority", int, 1)
    with pytest.raises(ValueError, match="priority"):
        q.add("x", {}, priority=True)  # True == 1 and hashes alike, but is no priority
    with pytest.raises(ValueError, match="attempts"):
        q.add_bulk([("x", {}, {"attempts": 2}), ("x", {}, {"attempts": 2.0})])
    assert r.zcard(q.keys.prioritized) == 1 and q.counts().total == 1


def test_remembered_options_give_what_build_opts_gives_and_a_dict_per_job(q: Queue, r: redis.Redis) -> None:
    kwargs: dict[str, Any] = {"delay": timedelta(seconds=5), "attempts": 3, "lifo": False}
    first, second, third = q.add_bulk([("x", {}, kwargs)] * 3)  # the second and third: remembered
    assert first.opts == second.opts == third.opts == build_opts(**kwargs)
    second.opts["attempts"] = 99  # one job's dict changed: the others are not
    assert third.opts["attempts"] == 3 and first.opts["attempts"] == 3
    fourth = q.add_bulk([("x", {}, kwargs)])[0]
    assert fourth.opts["attempts"] == 3
    assert json.loads(r.hget(q.keys.job(fourth.id), "opts") or b"{}") == build_opts(**kwargs)


def test_options_holding_dicts_are_worked_out_afresh(q: Queue) -> None:
    one = q.add("x", {}, backoff=5, remove_on_complete={"count": 3})
    two = q.add("x", {}, backoff=5, remove_on_complete={"count": 3})
    assert one.opts == two.opts and one.opts["backoff"] is not two.opts["backoff"]
    deduped = q.add("x", {}, deduplication={"id": "d1"})
    assert deduped.opts["de"]["id"] == "d1" and q.add("x", {}, deduplication={"id": "d1"}).id == deduped.id


def test_the_store_forgets_everything_once_full(q: Queue) -> None:
    for attempts in range(options.REMEMBERED + 5):
        q.add("x", {}, attempts=attempts)
    assert 0 < len(options._seen) <= options.REMEMBERED
