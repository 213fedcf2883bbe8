"""The spare connection single script calls take (clients.DirectLine): same answers as the
client's own path, and every way it can fail ends in the client's path, never in a lost or
doubled job."""

from __future__ import annotations

import gc
import os
import threading
import weakref
from typing import Any

import pytest
import redis
from redis.exceptions import ResponseError

from dashboard import Queue
from dashboard.clients import DirectLine, direct_line


def _line_ids(r: redis.Redis) -> list[str]:
    """Client ids of the connections named as the test names them."""
    return [c["id"] for c in r.client_list() if c.get("name") == "direct-line-test"]


def _named(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, client_name="direct-line-test")


def test_one_line_per_client_and_none_for_single_connection_clients(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    assert direct_line(client) is direct_line(client)
    assert direct_line(redis.Redis.from_url(redis_url)) is not direct_line(client)
    assert direct_line(redis.Redis.from_url(redis_url, single_connection_client=True)) is None


def test_adds_go_over_one_spare_connection(redis_url: str, r: redis.Redis) -> None:
    client = _named(redis_url)
    q = Queue("direct", connection=client)
    ids = [q.add("job", {"i": i}).id for i in range(50)]
    assert ids == [str(i) for i in range(1, 51)]
    assert r.llen("bull:direct:wait") == 50
    # The pool's connection (script loading) and the spare one: no connection per add.
    assert len(_line_ids(r)) == 2


def test_a_killed_connection_falls_back_and_the_add_lands_once(redis_url: str, r: redis.Redis) -> None:
    client = _named(redis_url)
    q = Queue("direct", connection=client)
    q.add("job", {"i": 0})
    for client_id in _line_ids(r):
        r.client_kill_filter(_id=client_id)
    assert q.add("job", {"i": 1}).id == "2"  # the dead spare is dropped; the client's path adds it
    assert q.add("job", {"i": 2}).id == "3"  # and the next one gets a fresh spare
    assert r.lrange("bull:direct:wait", 0, -1) == [b"3", b"2", b"1"]


def test_scripts_flushed_are_loaded_again(redis_url: str, r: redis.Redis) -> None:
    q = Queue("direct", connection=redis.Redis.from_url(redis_url))
    q.add("job", {})
    r.script_flush()
    assert q.add("job", {}).id == "2"


def test_an_error_reply_is_raised_and_the_connection_stays_in_step(redis_url: str, r: redis.Redis) -> None:
    client = redis.Redis.from_url(redis_url)
    q = Queue("direct", connection=client)
    q.add("job", {})
    r.delete("bull:direct:wait")
    r.set("bull:direct:wait", "not a list")  # another tool's key of the wrong type
    with pytest.raises(ResponseError):
        q.add("job", {})
    r.delete("bull:direct:wait")
    job = q.add("job", {"after": True})
    assert r.hget(f"bull:direct:{job.id}", "data") == b'{"after":true}'


def test_a_busy_line_sends_through_the_client(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    line = direct_line(client)
    assert line is not None
    # Another thread holds the line: this call must not wait for it.
    line._lock.acquire()
    try:
        assert line.execute(client, "PING") is True  # the client's reply callback: via the pool
    finally:
        line._lock.release()
    assert line.execute(client, "PING") == b"PONG"  # the spare connection: the raw reply


def test_threads_adding_at_once_lose_nothing(redis_url: str, r: redis.Redis) -> None:
    q = Queue("direct", connection=redis.Redis.from_url(redis_url))
    errors: list[BaseException] = []

    def produce() -> None:
        try:
            for i in range(200):
                q.add("job", {"i": i})
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=produce) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert r.llen("bull:direct:wait") == 1600
    assert len(set(r.lrange("bull:direct:wait", 0, -1))) == 1600


def test_an_interrupted_reply_drops_the_connection(redis_url: str, r: redis.Redis, monkeypatch: Any) -> None:
    client = _named(redis_url)
    line = direct_line(client)
    assert isinstance(line, DirectLine)
    assert line.execute(client, "PING") == b"PONG"
    conn = line._conn

    def interrupted(*_args: Any, **_kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(conn, "read_response", interrupted)
    with pytest.raises(KeyboardInterrupt):
        line.execute(client, "PING")
    assert line._conn is None  # its PONG was never read: the connection is not reused
    assert line.execute(client, "PING") == b"PONG"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_opens_its_own_connection(redis_url: str, r: redis.Redis) -> None:
    client = redis.Redis.from_url(redis_url)
    q = Queue("direct", connection=client)
    q.add("job", {})
    parent_conn = direct_line(client)._conn
    pid = os.fork()
    if pid == 0:  # the child: add over a connection of its own, then leave at once
        code = 0
        try:
            q.add("job", {"child": True})
            code = 0 if direct_line(client)._conn is not parent_conn else 1
        except Exception:  # noqa: BLE001 - any failure is the exit code
            code = 2
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert q.add("job", {}).id == "3"  # the parent's connection was left alone
    assert r.llen("bull:direct:wait") == 3


def test_a_client_dropped_drops_its_line(redis_url: str, r: redis.Redis) -> None:
    client = _named(redis_url)
    Queue("direct", connection=client).add("job", {})
    client.close()  # its pool's connections; the spare one is the line's to close
    client_ref, line_ref = weakref.ref(client), weakref.ref(direct_line(client))
    del client
    gc.collect()
    assert client_ref() is None  # the line does not keep its client alive
    assert line_ref() is None  # and goes with it, connection and all
    assert _line_ids(r) == []  # closed, not left for the server's timeout


# --- several commands streamed on the line (Queue.add_bulk's calls) -------------------------------

def test_several_answers_in_order_with_errors_in_place(redis_url: str, r: redis.Redis) -> None:
    line = direct_line(redis.Redis.from_url(redis_url))
    assert line is not None
    replies = line.several([("SET", "k", "1"), ("LPUSH", "k", "x"), ("GET", "k"), ("INCR", "k")])
    assert replies is not None and replies[0] == b"OK" and replies[2] == b"1" and replies[3] == 2
    assert isinstance(replies[1], ResponseError) and "WRONGTYPE" in str(replies[1])
    assert line.several([("PING",)]) == [b"PONG"]  # still in step after the error reply
    line._lock.acquire()  # busy: nothing sent, the caller takes its own path
    try:
        assert line.several([("INCR", "k")]) is None
    finally:
        line._lock.release()
    assert r.get("k") == b"2"


def test_add_bulk_streams_its_calls_and_a_killed_line_falls_back_once(redis_url: str, r: redis.Redis) -> None:
    client = _named(redis_url)
    q = Queue("direct", connection=client)
    first = q.add_bulk([("job", {"i": i}, {}) for i in range(1000)])  # ten calls of 100 jobs
    assert [j.id for j in first] == [str(i) for i in range(1, 1001)]
    line = direct_line(client)
    assert line is not None and line._conn is not None  # streamed on the line, not a pipeline of the pool
    for client_id in _line_ids(r):
        r.client_kill_filter(_id=client_id)
    again = q.add_bulk([("job", {"i": i}, {}) for i in range(1000, 1500)])
    assert [j.id for j in again] == [str(i) for i in range(1001, 1501)]
    assert r.llen("bull:direct:wait") == 1500 and len(set(r.lrange("bull:direct:wait", 0, -1))) == 1500


def test_add_bulk_after_scripts_were_flushed_adds_each_job_once_in_order(redis_url: str, r: redis.Redis) -> None:
    q = Queue("direct", connection=redis.Redis.from_url(redis_url))
    q.add_bulk([("job", {}, {}) for _ in range(200)])
    r.script_flush()
    jobs = q.add_bulk([("job", {"i": i}, {}) for i in range(300)])
    assert [j.id for j in jobs] == [str(i) for i in range(201, 501)]
    assert r.lrange("bull:direct:wait", 0, 2) == [b"500", b"499", b"498"] and r.llen("bull:direct:wait") == 500


def test_replies_slower_than_the_spin_are_read_whole_and_in_order(redis_url: str,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The line looks for a reply for up to SPIN_SECONDS, then waits as redis-py does: a reply that comes
    later (a script busy far longer than that), one that comes at once, and one with the look turned
    off are each read whole, and the next call gets its own reply."""
    from dashboard import clients

    client = redis.Redis.from_url(redis_url)
    line = direct_line(client)
    assert line is not None
    busy = "local i = 0 while i < tonumber(ARGV[1]) do i = i + 1 end return {i, ARGV[2]}"
    for spin in (clients.SPIN_SECONDS, 0.0):
        monkeypatch.setattr(clients, "SPIN_SECONDS", spin)
        assert line.execute(client, "EVAL", busy, 0, 3_000_000, "slow") == [3_000_000, b"slow"]
        assert line.execute(client, "EVAL", busy, 0, 1, "quick") == [1, b"quick"]
        assert line.execute(client, "PING") in (True, b"PONG")


def test_the_look_follows_the_connection_after_a_reconnect(redis_url: str, r: redis.Redis) -> None:
    """The spare connection reads with LookingParser, whatever the client's own parser; its socket
    poller belongs to one connection and is made again for the next one."""
    from dashboard.clients import LookingParser

    client = _named(redis_url)
    line = direct_line(client)
    assert line is not None
    assert line.execute(client, "ECHO", "a") == b"a"
    first = line._conn
    assert isinstance(first._parser, LookingParser)
    assert first._parser._looker is not None and first._parser._looker[0] == first._sock.fileno()
    for client_id in _line_ids(r):
        r.client_kill_filter(_id=client_id)
    assert line.execute(client, "ECHO", "b") == b"b"  # the dead spare dropped; the client's path answered
    assert line._conn is None
    assert line.execute(client, "ECHO", "c") == b"c"  # a fresh spare, looked at through its own socket
    fresh: Any = line._conn
    assert fresh is not first and fresh._parser._looker[0] == fresh._sock.fileno()


def test_the_dashboards_client_reads_long_and_pipelined_replies_whole(redis_url: str, r: redis.Redis) -> None:
    """The web client reads with LookingParser: a reply of many socket reads (2 MB) and a pipeline's
    replies come back whole and in order, as with redis-py's own parser."""
    from dashboard.clients import LookingParser, web_client

    client = web_client(redis_url)
    assert isinstance(client, redis.Redis)
    r.set("big", b"x" * 2_000_000)
    pipe = client.pipeline(transaction=False)
    pipe.get("big")
    pipe.strlen("big")
    pipe.echo("after")
    assert pipe.execute() == [b"x" * 2_000_000, 2_000_000, b"after"]
    assert isinstance(client.connection_pool.get_connection()._parser, LookingParser)


_ECHO = "if ARGV[1] == 'bad' then return redis.error_reply('ERR bad ' .. ARGV[2]) end return ARGV[2]"


def test_stream_hands_out_replies_in_order_with_errors_in_place(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    line = direct_line(client)
    assert line is not None
    commands = [("EVAL", _ECHO, 0, "bad" if i == 2 else "ok", f"r{i}") for i in range(6)]
    got = line.stream(client, commands)
    assert got is not None
    replies = list(got)
    assert [r for i, r in enumerate(replies) if i != 2] == [b"r0", b"r1", b"r3", b"r4", b"r5"]
    assert isinstance(replies[2], ResponseError) and "bad r2" in str(replies[2])
    assert line.execute(client, "ECHO", "next") == b"next"  # the line is free and in step


def test_a_stream_left_early_drops_its_connection_and_frees_the_line(redis_url: str) -> None:
    """Replies not read must never reach the next caller: the connection goes, the next call opens another."""
    client = redis.Redis.from_url(redis_url)
    line = direct_line(client)
    assert line is not None
    got = line.stream(client, [("ECHO", f"s{i}") for i in range(5)])
    assert got is not None
    assert next(got) == b"s0"
    assert line.stream(client, [("ECHO", "x")]) is None  # taken while the stream is open
    got.close()
    assert line._conn is None
    assert line.execute(client, "ECHO", "after") == b"after"


def test_a_stream_whose_connection_dies_gets_the_rest_through_the_client(redis_url: str, r: redis.Redis) -> None:
    client = _named(redis_url)
    line = direct_line(client)
    assert line is not None
    got = line.stream(client, [("ECHO", f"s{i}") for i in range(4)])
    assert got is not None
    assert next(got) == b"s0"
    for client_id in _line_ids(r):  # the spare connection and the pool's (none yet used)
        r.client_kill_filter(_id=client_id)
    assert list(got) == [b"s1", b"s2", b"s3"]
    assert line.execute(client, "ECHO", "after") == b"after"


def test_a_page_of_jobs_streamed_reads_what_one_batch_reads(redis_url: str) -> None:
    """Queue.jobs reads 25 jobs per script call, streamed: 60 jobs, one of them made too long for
    its row (second pass) and one deleted, come back in order as without the spare connection."""
    client = redis.Redis.from_url(redis_url)
    q = Queue("streamed", connection=client)
    ids = [q.add("job", {"i": i}).id for i in range(60)]
    client.hset(f"bull:streamed:{ids[30]}", "data", '{"long": "' + "y" * 5000 + '"}')
    client.delete(f"bull:streamed:{ids[40]}")
    streamed = q.jobs("waiting", 0, 99, summary=True)
    line = direct_line(client)
    assert line is not None
    with line._lock:  # the line busy: one pipelined batch
        batched = q.jobs("waiting", 0, 99, summary=True)
    assert [(j.id, j.data, j.truncated) for j in streamed] == [(j.id, j.data, j.truncated) for j in batched]
    assert [j.id for j in streamed] == [i for i in reversed(ids) if i != ids[40]]
    assert [j.truncated["data"] for j in streamed if j.id == ids[30]] == [len("y" * 5000) + 12]
