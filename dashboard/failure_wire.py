"""Commands sent ahead on one connection, their replies read later: the failure index's pipelining.

While the failure index fingerprints one batch (Python), Redis should already be reading the
next one (:mod:`dashboard.failure_index`). A thread doing the reads competes with the
fingerprinting for the GIL (parsing a 1 MB reply is Python work); instead :class:`Wire` writes
the next batch's commands to a connection of the client's own pool, returns at once, and reads
the replies, in order, when asked. Redis works on the other core meanwhile. A client whose
connections cannot be used so (a Redis Cluster client) gets the same calls run as an ordinary
pipeline at :meth:`Wire.receive`. This module only moves commands and replies: it must not
decide what is sent, and it builds no client (:mod:`dashboard.clients` does).
"""

from __future__ import annotations

from typing import Any

import redis

from .clients import Client


class Wire:
    """Commands queued with :meth:`send`, their replies (or errors, in place) from :meth:`receive`."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self._conn: Any = None
        self._sent = 0
        self._queued: list[tuple[Any, ...]] = []
        self._pool = client.connection_pool if isinstance(client, redis.Redis) else None
        self._direct = self._pool is not None

    def send(self, *commands: tuple[Any, ...]) -> None:
        """Write ``commands`` now (or, for a cluster client, keep them for :meth:`receive`)."""
        if not self._direct:
            self._queued.extend(commands)
            return
        if self._conn is None:
            assert self._pool is not None
            self._conn = self._pool.get_connection()
        try:
            self._conn.send_packed_command(self._conn.pack_commands(commands), check_health=not self._sent)
        except BaseException:
            self.close(broken=True)
            raise
        self._sent += len(commands)

    def receive(self) -> list[Any]:
        """The replies of every command sent since the last call, in order; a command that
        failed (e.g. NOSCRIPT) gives its error in its place."""
        if not self._direct:
            queued, self._queued = self._queued, []
            pipe = self.client.pipeline(transaction=False)
            for command in queued:
                pipe.execute_command(*command)
            return pipe.execute(raise_on_error=False) if queued else []
        replies: list[Any] = []
        try:
            while self._sent:
                try:
                    replies.append(self._conn.read_response())
                except redis.ResponseError as e:  # read whole: the connection stays in step
                    replies.append(e)
                self._sent -= 1
        except BaseException:
            self.close(broken=True)
            raise
        return replies

    def close(self, broken: bool = False) -> None:
        """Give the connection back to the pool (dropped when replies are still unread)."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if broken or self._sent:
            conn.disconnect()
        self._sent = 0
        if self._pool is not None:
            self._pool.release(conn)
