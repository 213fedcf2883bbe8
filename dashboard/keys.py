"""Every Redis key name Bullpen reads or writes, in BullMQ 6's layout.

Nothing else in the project formats a key. A queue's keys are
``<prefix>:<queue>:<suffix>``; a job's hash is ``<prefix>:<queue>:<id>`` and its
sub-keys ``<prefix>:<queue>:<id>:lock`` / ``:logs``. This module performs no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Suffixes of the per-queue keys, as BullMQ 6 names them.
STATE_SUFFIXES = ("wait", "paused", "active", "prioritized", "delayed", "waiting-children", "completed", "failed")


def registry_key(prefix: str) -> str:
    """The set of queue names Bullpen has seen under ``prefix``.

    BullMQ has no such registry. The empty queue name between the two colons can
    never be a BullMQ queue (BullMQ refuses empty names), so it cannot collide.
    """
    return f"{prefix}::queues"


def task_key(prefix: str, task_id: str) -> str:
    """A dashboard bulk action's progress (a hash with a TTL), shared by every web process.
    Like :func:`registry_key` it sits outside any queue's namespace (empty queue name)."""
    return f"{prefix}::task:{task_id}"


def audit_key(prefix: str, queue: str | None = None) -> str:
    """The audit trail (a capped stream) of every dashboard action under ``prefix``, or of the
    actions on one queue. Outside every queue's namespace, like :func:`registry_key`."""
    return f"{prefix}::audit" if queue is None else f"{prefix}::audit:{queue}"


def pause_key(prefix: str, queue: str) -> str:
    """Why and until when a queue was paused (a hash: reason, by, since, until), kept where
    BullMQ never looks (BullMQ's own flag is ``meta.paused``)."""
    return f"{prefix}::pause:{queue}"


def heartbeats_key(prefix: str) -> str:
    """The index of Bullpen workers' heartbeats under ``prefix``: a sorted set of worker ids
    scored by when each heartbeat expires (ms), so readers list live ones without ``KEYS``."""
    return f"{prefix}::workers"


def heartbeat_key(prefix: str, worker_id: str) -> str:
    """One Bullpen worker's heartbeat (a JSON string with a TTL: host, pid, running jobs ...).
    Outside every queue's namespace, like :func:`registry_key`: BullMQ never looks here."""
    return f"{prefix}::worker:{worker_id}"


def failure_index_key(prefix: str, queue: str, part: str) -> str:
    """One key of a queue's failure index (:mod:`dashboard.failure_index`): ``jobs``, ``counts``,
    ``again``, ``meta``, ``state``, ``lock``, or ``c:`` (the stem of each cluster's set, to which
    the cluster id is appended). Outside every queue's namespace (empty queue name), where BullMQ
    never looks; a queue name has no ``:``, so no two queues share a key."""
    if part not in ("jobs", "counts", "again", "meta", "state", "lock", "c:"):
        raise ValueError(f"no failure index key {part!r}")
    return f"{prefix}::failures:{queue}:{part}"


def redrive_key(prefix: str, task_id: str) -> str:
    """A re-drive's control and progress (a hash with a TTL: pause/cancel requests, jobs moved,
    jobs failed again), readable by every dashboard process. Outside every queue's namespace."""
    return f"{prefix}::redrive:{task_id}"


#: The job hash field a re-drive writes (JSON: at, by, task): BullMQ's Job.fromJSON and our
#: reads ignore fields they do not know, and it goes away with the job.
REDRIVE_FIELD = "bpRedrive"


def validate_queue_name(name: object) -> str:
    """The one naming rule for queues, shared by the runtime and the dashboard: any non-empty
    text without ``:`` (BullMQ's own rule; ``:`` would split the key layout). ``ValueError``
    otherwise. Every name this accepts can be opened in the dashboard."""
    if not isinstance(name, str) or not name or ":" in name:
        raise ValueError(f"queue name must be a non-empty string without ':', got {name!r}")
    return name


def is_queue_name(name: object) -> bool:
    """Whether :func:`validate_queue_name` accepts ``name``."""
    return isinstance(name, str) and bool(name) and ":" not in name


#: Per-queue keys that are never jobs, with what they hold (BullMQ 6 and legacy Bull names).
BOOKKEEPING = {
    "meta": "the queue's settings (paused flag, rate limit, concurrency)", "id": "the queue's job id counter",
    "events": "the queue's event stream", "marker": "the workers' wake-up marker", "limiter": "the rate limiter",
    "pc": "the priority counter", "stalled-check": "the stalled-check throttle", "stalled": "the stalled set",
    "repeat": "the job scheduler index", "delay": "a legacy Bull key", "priority": "a legacy Bull key",
    "meta-paused": "Bull's pause flag",
    "metrics": "the queue's metrics", "de": "a deduplication key", "dn": "a deduplication key",
    **{s: f"the queue's {s} list or set" for s in STATE_SUFFIXES},
}
#: Suffixes of a job's own sub-keys (``<id>:lock`` ...).
JOB_SUBKEYS = ("lock", "logs", "dependencies", "processed", "failed", "unsuccessful")


def not_a_job(job_id: str) -> str | None:
    """Why ``<prefix>:<queue>:<job_id>`` is one of BullMQ's bookkeeping keys rather than a job
    (``meta``, ``repeat:<scheduler>``, ``de:<id>``, ``metrics:failed``, ``<id>:lock`` ...), or
    None when it can be a job. Job ids have no ``:`` or exactly three parts (BullMQ's rule;
    a scheduler's jobs are ``repeat:<scheduler>:<millis>``)."""
    parts = job_id.split(":")
    head = parts[0]
    if len(parts) == 1 and head in BOOKKEEPING:
        return f"{job_id!r} is not a job: it is {BOOKKEEPING[head]}"
    if len(parts) > 1 and head in ("metrics", "de", "dn"):
        return f"{job_id!r} is not a job: it is {BOOKKEEPING[head]}"
    if head == "repeat" and not (len(parts) == 3 and parts[2].isdigit()):
        return f"{job_id!r} is not a job: it is a job scheduler's definition"
    if len(parts) > 1 and parts[-1] in JOB_SUBKEYS:
        return f"{job_id!r} is not a job: it is the {parts[-1]} of job {':'.join(parts[:-1])!r}"
    if len(parts) not in (1, 3):
        return f"{job_id!r} is not a job id: BullMQ ids have no ':' or exactly three ':'-separated parts"
    return None


def hash_tag(key: str) -> str | None:
    """The part of ``key`` Redis Cluster hashes when it is not the whole key: the text between
    the first ``{`` and the first ``}`` after it, when that is not empty (Redis's own rule)."""
    start = key.find("{")
    end = key.find("}", start + 1) if start >= 0 else -1
    return key[start + 1:end] if end > start + 1 else None


def cluster_slot_problem(prefix: str, queue: str) -> str | None:
    """Why the queue's keys would not all share one Redis Cluster slot, or None when they do.

    Our scripts touch job keys they are not passed (``<prefix>:<queue>:<id>``...) and the pause
    record (:func:`pause_key`), so ``<prefix>:<queue>:`` must hold a complete ``{hash tag}``
    whatever follows it, and the pause record must carry the same tag. BullMQ requires the
    same of queues on a cluster."""
    tag = hash_tag(f"{prefix}:{queue}:")
    if tag is not None and hash_tag(pause_key(prefix, queue)) == tag:
        return None
    return (f"on Redis Cluster, queue {queue!r} (prefix {prefix!r}) needs a hash tag so that all its keys share "
            f"one slot, as BullMQ requires too: use a queue name like '{{{queue}}}' or a prefix like "
            f"'{{{prefix}}}'")


def split_job_key(key: str) -> tuple[str, str, str] | None:
    """A full job key ``<prefix>:<queue>:<id>`` (a flow's ``parentKey``, a ``:dependencies``
    member) as (prefix, queue, id), the id after the last ``:`` as BullMQ takes it; None when
    it has no such parts."""
    head, _, job_id = key.rpartition(":")
    prefix, _, queue = head.rpartition(":")
    return (prefix, queue, job_id) if prefix and queue and job_id else None


def check_cluster_tag(client: object, prefix: str, queue: str) -> None:
    """Raise :class:`~dashboard.errors.ClusterHashTagMissing` (a ``ValueError``) when
    ``client`` is a Redis Cluster client and the queue's keys would not share one slot."""
    from redis.cluster import RedisCluster

    from .errors import ClusterHashTagMissing

    if isinstance(client, RedisCluster) and (problem := cluster_slot_problem(prefix, queue)) is not None:
        raise ClusterHashTagMissing(problem)


def worker_client_name(prefix: str, queue: str, worker_name: str | None = None) -> str:
    """The ``CLIENT SETNAME`` BullMQ workers use, so ``getWorkers()`` sees ours."""
    import base64

    encoded = base64.b64encode(queue.encode()).decode()
    name = f"{prefix}:{encoded}"
    return f"{name}:w:{worker_name}" if worker_name else name


def worker_client_queue(prefix: str, client_name: str) -> str | None:
    """The queue a worker connection named by :func:`worker_client_name` serves, or None when
    ``client_name`` is not such a name under ``prefix``."""
    import base64
    import binascii

    head = prefix + ":"
    if not client_name.startswith(head):
        return None
    encoded = client_name[len(head):].split(":w:", 1)[0]
    try:
        queue = base64.b64decode(encoded, validate=True).decode()
    except (binascii.Error, ValueError):
        return None
    return queue if is_queue_name(queue) and worker_client_name(prefix, queue) == head + encoded else None


@dataclass(frozen=True)
class Keys:
    """Key names for one queue."""

    prefix: str
    queue: str

    @property
    def base(self) -> str:
        """``<prefix>:<queue>:``, the stem of every job key (scripts receive it)."""
        return f"{self.prefix}:{self.queue}:"

    @property
    def wait(self) -> str:
        return self.base + "wait"

    @property
    def paused(self) -> str:
        return self.base + "paused"

    @property
    def active(self) -> str:
        return self.base + "active"

    @property
    def prioritized(self) -> str:
        return self.base + "prioritized"

    @property
    def delayed(self) -> str:
        return self.base + "delayed"

    @property
    def waiting_children(self) -> str:
        return self.base + "waiting-children"

    @property
    def completed(self) -> str:
        return self.base + "completed"

    @property
    def failed(self) -> str:
        return self.base + "failed"

    @property
    def pc(self) -> str:
        return self.base + "pc"

    @property
    def marker(self) -> str:
        return self.base + "marker"

    @property
    def stalled(self) -> str:
        return self.base + "stalled"

    @property
    def stalled_check(self) -> str:
        return self.base + "stalled-check"

    @property
    def meta(self) -> str:
        return self.base + "meta"

    @property
    def id(self) -> str:
        return self.base + "id"

    @property
    def events(self) -> str:
        return self.base + "events"

    @property
    def limiter(self) -> str:
        return self.base + "limiter"

    # --- legacy Bull 3/4 (npm ``bull``): keys BullMQ never writes -------------------------

    @property
    def meta_paused(self) -> str:
        """Bull's global pause flag (a string): while it exists, Bull adds go to ``paused``."""
        return self.base + "meta-paused"

    @property
    def priority(self) -> str:
        """Bull's priority zset (score = priority); the ids are in ``wait``/``paused`` too."""
        return self.base + "priority"

    def channel(self, event: str) -> str:
        """The pub/sub channel Bull publishes an event on (``paused``, ``resumed``, ``waiting``...):
        a channel, not a key, though it is spelled like one."""
        return self.base + event

    def metrics(self, status: str, data: bool = False) -> str:
        """``metrics:completed`` or ``metrics:failed`` (``data``: its per-minute list)."""
        if status not in ("completed", "failed"):
            raise ValueError(f"no metrics for {status!r}")
        return f"{self.base}metrics:{status}" + (":data" if data else "")

    @property
    def repeat(self) -> str:
        """The job scheduler index (zset); ``repeat:<id>`` is a scheduler's hash."""
        return self.base + "repeat"

    def scheduler(self, scheduler_id: str) -> str:
        return f"{self.base}repeat:{scheduler_id}"

    def state(self, suffix: str) -> str:
        """The key holding jobs of one state (``wait``, ``failed``, ...)."""
        if suffix not in STATE_SUFFIXES:
            raise ValueError(f"unknown state key {suffix!r}")
        return self.base + suffix

    def job(self, job_id: str) -> str:
        return self.base + job_id

    def lock(self, job_id: str) -> str:
        return f"{self.base}{job_id}:lock"

    def logs(self, job_id: str) -> str:
        return f"{self.base}{job_id}:logs"

    def dedup(self, dedup_id: str) -> str:
        """``de:<id>``: the id of the job holding a deduplication slot (string)."""
        return f"{self.base}de:{dedup_id}"

    def dedup_next(self, dedup_id: str) -> str:
        """``dn:<id>``: the add kept while the slot's job was active (keepLastIfActive; hash)."""
        return f"{self.base}dn:{dedup_id}"

    def job_key(self, job_id: str | bytes, suffix: str = "") -> str | bytes:
        """A job's hash (``suffix`` ``:lock``, ``:logs``: those keys) for an id as text or as
        the raw bytes Redis returned (an id need not be UTF-8): bytes in, bytes out."""
        if isinstance(job_id, bytes):
            return self.base.encode() + job_id + suffix.encode()
        return self.base + job_id + suffix

    def bookkeeping(self) -> list[str]:
        """The queue's keys that hold no jobs (deleted last by obliterate), legacy ones too."""
        suffixes = ("meta", "events", "id", "pc", "marker", "stalled", "stalled-check", "limiter", "repeat",
                    "delay", "priority", "metrics:completed", "metrics:completed:data", "metrics:failed",
                    "metrics:failed:data")
        return [self.base + s for s in suffixes]
