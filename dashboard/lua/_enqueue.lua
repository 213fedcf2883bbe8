--[[ _enqueue: a helper scripts.py puts in front of every script that calls storeAndEnqueue
(add_job, move_to_finished, add_job_scheduler, add_next_scheduled); not a script of its own.

storeAndEnqueue(k, base, jobId, name, data, opts, ts, delay, prio, lifo, deid, maxEvents)
writes the job hash as BullMQ's storeJob does (`deid` only when not nil), XADDs `added`,
then makes the job delayed (delay > 0), prioritized (prio > 0) or waiting (LPUSH, RPUSH when
`lifo`), with the marker and the `delayed` / `waiting` event as BullMQ's add scripts write
them. `k` holds the keys: wait, prioritized, delayed, pc, meta, marker, events, active; with
`k.once` (add_job: its writes change neither meta, active nor the ready marker) the first waiting
job's check of meta and the marker's ZADD stand for the rest of the call (`k.marked`), so a batch
of N adds makes those two commands once instead of N times, to the same end state.
delayJob(k, jobId, ts, delay, maxEvents) puts a job in delayed due at ts + delay (BullMQ's
addDelayedJob: getDelayedScore's tie-break, the `delayed` event, the marker of the earliest).
]]
local function delayJob(k, jobId, ts, delay, maxEvents)
  local rcall = redis.call
  local due = delay > 0 and ts + delay or ts
  local low, high = due * 4096, (due + 1) * 4096 - 1
  local last = rcall('ZREVRANGEBYSCORE', k.delayed, high, low, 'WITHSCORES', 'LIMIT', 0, 1)
  local score = low
  if last[2] then score = math.min(tonumber(last[2]) + 1, high) end
  rcall('ZADD', k.delayed, score, jobId)
  rcall('XADD', k.events, 'MAXLEN', '~', maxEvents, '*', 'event', 'delayed', 'jobId', jobId, 'delay', due)
  local first = rcall('ZRANGE', k.delayed, 0, 0, 'WITHSCORES')
  rcall('ZADD', k.marker, math.floor(tonumber(first[2]) / 4096), '1')
end

local function storeAndEnqueue(k, base, jobId, name, data, opts, ts, delay, prio, lifo, deid, maxEvents)
  local rcall = redis.call
  local jobKey = base .. jobId
  rcall('HSET', jobKey, 'name', name, 'data', data, 'opts', opts, 'timestamp', ts, 'delay', delay,
        'priority', prio)
  if deid then rcall('HSET', jobKey, 'deid', deid) end
  rcall('XADD', k.events, 'MAXLEN', '~', maxEvents, '*', 'event', 'added', 'jobId', jobId, 'name', name)
  if delay > 0 then
    delayJob(k, jobId, ts, delay, maxEvents)
    return
  end
  if prio > 0 then
    local pc = rcall('INCR', k.pc)
    rcall('ZADD', k.prioritized, prio * 4294967296 + pc % 4294967296, jobId)
  elseif lifo then
    rcall('RPUSH', k.wait, jobId)
  else
    rcall('LPUSH', k.wait, jobId)
  end
  if k.marked == nil then
    local flags = rcall('HMGET', k.meta, 'paused', 'concurrency')
    local ready = not flags[1] and not (flags[2] and rcall('LLEN', k.active) >= tonumber(flags[2]))
    if ready then rcall('ZADD', k.marker, 0, '0') end
    if k.once then k.marked = ready end
  end
  rcall('XADD', k.events, 'MAXLEN', '~', maxEvents, '*', 'event', 'waiting', 'jobId', jobId)
end
