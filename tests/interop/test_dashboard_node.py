"""The dashboard on a queue that only Node BullMQ 6.7.0 wrote (issue 3, "Tests").

Node adds the jobs and a Node worker fails some of them; the dashboard finds the queue with
Rescan, shows the counts Node's ``getJobCounts`` reports, and its retry and pause act on it.
"""

from __future__ import annotations

import re
import subprocess
from typing import Any

import redis
from flask.testing import FlaskClient

from dashboard import Queue
from tests.interop.test_node_bullmq import CLI, COMMON_COUNTS, NODE, node_cli, pytestmark  # noqa: F401
from tests.webkit import HX, post

NAME = "node-orders"


def page_counts(client: FlaskClient) -> dict[str, int]:
    html = client.get("/", headers=HX).get_data(as_text=True)
    row = html.split(f'data-queue="{NAME}"', 1)[1].split("</tr>", 1)[0]
    found = dict(re.findall(r'data-state="([a-z-]+)"\s+href="[^"]+">([\d,]+)<', row))
    return {state: int(value.replace(",", "")) for state, value in found.items()}


def test_node_queue_shows_node_counts_and_obeys_the_page(client: FlaskClient, redis_url: str,
                                                         r: redis.Redis) -> None:
    specs: list[dict[str, Any]] = ([{"name": "charge", "data": {"i": i}} for i in range(4)]
                                   + [{"name": "boom", "data": {"i": 9}}, {"name": "boom", "data": {"i": 10}}]
                                   + [{"name": "later", "data": {}, "opts": {"delay": 3_600_000}}])
    ids = node_cli(redis_url, NAME, "add", stdin=specs)["ids"]
    subprocess.run([NODE, str(CLI), "work", "--redis", redis_url, "--queue", NAME, "--fail-names", "boom",
                    "--expect", "6", "--out", "/dev/null"], check=True, capture_output=True, timeout=60)
    assert "found 1 queue" in post(client, "/rescan", target="summary").headers["HX-Trigger"]

    node = node_cli(redis_url, NAME, "counts")
    shown = page_counts(client)
    assert shown == {k: node[k] for k in COMMON_COUNTS if k not in ("waiting-children", "paused")}
    assert (shown["completed"], shown["failed"], shown["delayed"]) == (4, 2, 1)

    failed_id = ids[4]
    html = client.get(f"/queues/{NAME}/jobs/{failed_id}").get_data(as_text=True)
    assert "failed" in html and "boom" in html
    resp = post(client, f"/queues/{NAME}/jobs/{failed_id}/retry", target="job")
    assert resp.status_code == 200
    assert node_cli(redis_url, NAME, "job", "--id", failed_id)["state"] == "waiting"

    assert post(client, f"/queues/{NAME}/pause", target="queue").status_code == 200
    assert Queue(NAME, connection=r).is_paused()
    assert 'id="paused-badge"' in client.get(f"/queues/{NAME}").get_data(as_text=True)
    post(client, f"/queues/{NAME}/resume", target="queue")
    assert not Queue(NAME, connection=r).is_paused()
