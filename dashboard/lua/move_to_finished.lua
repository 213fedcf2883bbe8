--[[ move_to_finished: active -> completed or failed (final) for a batch of jobs, each checked
against its lock token. One call settles every job a worker finished since its last call.

KEYS[1] active list   KEYS[2] completed zset   KEYS[3] failed zset   KEYS[4] stalled set
KEYS[5] events stream KEYS[6] meta hash        KEYS[7] wait list     KEYS[8] prioritized zset
KEYS[9] delayed zset  KEYS[10] limiter string
KEYS[11] metrics:completed hash  KEYS[12] metrics:failed hash
KEYS[13] metrics:completed:data list  KEYS[14] metrics:failed:data list
KEYS[15] pc string  KEYS[16] marker zset  KEYS[17] id string (the re-add of a kept add; pc and
marker also for the fetch)
ARGV[1] base   ARGV[2] now ms   ARGV[3] metrics data points to keep ('' = record no metrics), then
  optionally ':' and the statuses ('c' completed, 'f' failed) this worker recorded earlier in the
  minute of `now` (see collectMetrics)
ARGV[4] the worker limiter's max ('' for none)
ARGV[5..10] fetch the next jobs after the batch, as BullMQ's fetchNext (lua/_fetch.lua): token
  prefix ('' = no fetch), lock duration ms, most jobs to take, worker name, the worker
  limiter's max and duration ms ('' for none): move_to_active's ARGV[2, 3, 5..8], at `now`
ARGV[11..] nine values per job:
  id, token, 'completed' | 'failed',
  return value JSON (completed) or failed reason text (failed),
  stack trace to append ('' for none), how many stack traces to keep,
  keep count (-1 keep all, 0 delete the job now, N keep the newest N of that state),
  keep age in seconds (0 = no age limit), attempts allowed (opts.attempts)
Metrics: BullMQ's per-minute counts (collectMetrics), once per status per call, as if each
job had been recorded by its own call at `now`: one HINCRBY per status, plus an HGET of prevTS
when the minute may have turned. A metrics key of the wrong type is skipped.
Events: after the batch, `drained` when wait, active and prioritized are empty and a fetch
would have found nothing to wait for (not paused or maxed, no delayed job, not rate
limited), exactly when BullMQ's moveToFinished with fetchNext emits it (with a fetch: only when it took none).
Deduplication (lua/_dedup.lua's releaseAndRequeue): a finished job's slot `de:<deid>` is
released and the add keepLastIfActive kept in `dn:<deid>` is re-added, in this same call.
Flows (lua/_parent.lua): a finished child updates its parent as BullMQ's does; a job whose
children are not all done (or one failed with failParentOnFailure) fails instead of completing,
with the reason BullMQ's worker gives it.
Returns one number per job: attempts made (>= 1), or -1 job missing (or its key is not a
hash), -2 lock missing (or not a string), -6 lock held by another token, -3 job not in active,
-4 a completed flow parent whose children are not all done, with attempts left (nothing written:
the worker retries the attempt as failed).
With a fetch: {those numbers, move_to_active's reply (an error reply in place when it refused)}.
Error: a WRONGTYPE reply naming the first of KEYS[1..6] that holds the wrong type (nothing changed);
completed (failed) is not checked when no job of the batch completes (fails).
]]
local rcall = redis.call
local function refuse() return wrongType(KEYS, {'list', 'zset', 'zset', 'set', 'stream', 'hash'}) or tryError end
local base, now = ARGV[1], tonumber(ARGV[2])
-- Checks before the first write, at the fewest commands: meta by this read (pcall), stalled by
-- the first write (SREM, see finish), active, events and the sets the batch adds to by TYPE.
-- Nothing here writes meta: the drained check and the fetch use this read too.
local meta = try('HMGET', KEYS[6], 'paused', 'concurrency', 'max', 'duration', 'opts.maxLenEvents')
if meta == nil then return refuse() end
local maxEvents = maxEventsFrom(meta[5])
local dedupKeys = {wait = KEYS[7], prioritized = KEYS[8], delayed = KEYS[9], pc = KEYS[15], meta = KEYS[6],
                   marker = KEYS[16], events = KEYS[5], active = KEYS[1]}
local checks, types, statuses = {KEYS[1], KEYS[5]}, {'list', 'stream'}, {}
for i = 13, #ARGV, 9 do statuses[ARGV[i] == 'completed' and 2 or 3] = true end
for i = 2, 3 do
  if statuses[i] then checks[#checks + 1] = KEYS[i]; types[#types + 1] = 'zset' end
end
if wrongType(checks, types) then return refuse() end

local function deleteJob(jid)
  local k = base .. jid
  rcall('DEL', k, k .. ':logs', k .. ':dependencies', k .. ':processed', k .. ':failed', k .. ':unsuccessful')
end

local function trim(target, keep, age)
  if age > 0 then
    local old = rcall('ZRANGEBYSCORE', target, 0, now - age * 1000, 'LIMIT', 0, 1000)
    for _, jid in ipairs(old) do deleteJob(jid); rcall('ZREM', target, jid) end
  end
  if keep > 0 then
    local extra = rcall('ZCARD', target) - keep
    if extra > 0 then
      local old = rcall('ZRANGE', target, 0, math.min(extra, 1000) - 1)
      for _, jid in ipairs(old) do deleteJob(jid); rcall('ZREM', target, jid) end
    end
  end
end

local function finish(id, token, status, value, trace, traceLimit, keep, age, attempts)
  local jobKey = base .. id
  -- its hash (a job taken by a worker has processedOn; else EXISTS tells a hash from none)
  local got = redis.pcall('HMGET', jobKey, 'deid', 'processedOn', 'stacktrace', 'parentKey', 'parent', 'ats')
  if got.err or (not got[2] and rcall('EXISTS', jobKey) == 0) then return -1 end
  local held = notHeld(jobKey, token)
  if held then return held end
  if got[1] then  -- a kept add must be re-addable before anything is written
    local blocked = requeueBlocked(base, got[1], {KEYS[7], KEYS[8], KEYS[9], KEYS[15], KEYS[16], KEYS[17]})
    if blocked then return blocked end
  end
  -- _parent.lua: a flow's parent with children not all done fails this attempt (BullMQ's -4); with
  -- attempts left nothing is written here and the worker retries it, as BullMQ's worker does
  local gate = status == 'completed' and childrenGate(jobKey, id, KEYS[3])
  if gate and (tonumber(redis.pcall('HGET', jobKey, 'atm')) or 0) + 1 < attempts then return -4 end
  if not try('SREM', KEYS[4], id) then return refuse() end  -- only ever the first write: nothing changed
  rcall('DEL', jobKey .. ':lock')
  if rcall('LREM', KEYS[1], -1, id) == 0 then return -3 end
  local atm = bump(jobKey, 'atm') or 1  -- a spoiled count is left for the failedReason to name
  if gate then status, value = 'failed', gate end
  local completed = status == 'completed'
  local field = completed and 'returnvalue' or 'failedReason'
  local target = completed and KEYS[2] or KEYS[3]
  -- release this job's deduplication slot and re-add what keepLastIfActive kept (lua/_dedup.lua)
  if got[1] then releaseAndRequeue(dedupKeys, base, id, got[1], now, KEYS[17], maxEvents) end
  settleParent(jobKey, id, completed, value, keep == 0, now, got[4], got[5])  -- _parent.lua: tell a flow's parent
  if keep == 0 then
    deleteJob(id)
  else
    if trace ~= '' then rcall('HSET', jobKey, 'stacktrace', appendTrace(got[3], trace, traceLimit)) end
    rcall('HSET', jobKey, field, value, 'finishedOn', now, attemptFields(got[2], got[6], now, status))  -- _attempts.lua
    if not completed then rcall('HDEL', jobKey, 'defa') end
    rcall('ZADD', target, now, id)
    trim(target, keep, age)
  end
  rcall('XADD', KEYS[5], 'MAXLEN', '~', maxEvents, '*', 'event', status, 'jobId', id, field, value, 'prev', 'active')
  if not completed and atm >= attempts then
    rcall('XADD', KEYS[5], 'MAXLEN', '~', maxEvents, '*', 'event', 'retries-exhausted', 'jobId', id,
          'attemptsMade', atm)
  end
  return atm
end

-- BullMQ's collectMetrics for `n` jobs finished at `now` (one minute per data point). Keys or
-- fields of the wrong type make it skip what it cannot write (pcall), never fail the finishes.
-- `sameMinute`: this worker recorded this status earlier in now's minute, so prevTS (which only
-- ever moves forward) is in this minute or later and no data point is due: its HGET is skipped.
-- (Were the hash deleted or prevTS written back by another tool meanwhile, that is seen at the next
-- minute's first finish: prevTS set then, or the data points due pushed then.)
local function collectMetrics(metaKey, dataKey, n, keep, sameMinute)
  local total = redis.pcall('HINCRBY', metaKey, 'count', n)
  if type(total) ~= 'number' or sameMinute then return end
  local count = total - n
  local prevTS = rcall('HGET', metaKey, 'prevTS')
  if not prevTS then
    rcall('HSET', metaKey, 'prevTS', now, 'prevCount', 0)
    return
  end
  prevTS = tonumber(prevTS)
  if not prevTS then return end
  local points = math.min(math.floor(now / 60000) - math.floor(prevTS / 60000), keep)
  if points > 0 then
    local batch = {count - (tonumber(rcall('HGET', metaKey, 'prevCount')) or 0)}
    for _ = 2, points do
      batch[#batch + 1] = 0
      if #batch == 7000 then redis.pcall('LPUSH', dataKey, unpack(batch)); batch = {} end
    end
    if #batch > 0 then redis.pcall('LPUSH', dataKey, unpack(batch)) end
    redis.pcall('LTRIM', dataKey, 0, keep - 1)
    rcall('HSET', metaKey, 'prevCount', count, 'prevTS', now)
  end
end

local results, finished = {}, {completed = 0, failed = 0}
for i = 11, #ARGV, 9 do
  results[#results + 1] = finish(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4],
    traceLimitOf(ARGV[i + 5]), tonumber(ARGV[i + 6]) or -1, tonumber(ARGV[i + 7]) or 0, tonumber(ARGV[i + 8]) or 0)
  if type(results[#results]) == 'table' then return results[#results] end
  local status = ARGV[i + 2] == 'completed' and 'completed' or 'failed'
  if results[#results] > 0 then finished[status] = finished[status] + 1 end
end

local keep, seen = string.match(ARGV[3], '^(%d*):?(%a*)$')
keep = tonumber(keep)
if keep and keep >= 1 then
  if finished.completed > 0 then
    collectMetrics(KEYS[11], KEYS[13], finished.completed, keep, string.find(seen, 'c', 1, true) ~= nil)
  end
  if finished.failed > 0 then
    collectMetrics(KEYS[12], KEYS[14], finished.failed, keep, string.find(seen, 'f', 1, true) ~= nil)
  end
end

-- drained needs wait, active, prioritized and delayed absent (an empty list or zset is); a key
-- of another type exists (no drained event), and does not stop the finishes above
local function drained()
  if finished.completed + finished.failed > 0 and rcall('EXISTS', KEYS[7], KEYS[1], KEYS[8], KEYS[9]) == 0 then
    local maxed = tonumber(meta[2]) and tonumber(meta[2]) <= 0
    if not meta[1] and not maxed and rateLimitTTL(tonumber(meta[3] or ARGV[4]), KEYS[10]) == 0 then
      rcall('XADD', KEYS[5], 'MAXLEN', '~', maxEvents, '*', 'event', 'drained')
    end
  end
end
if ARGV[5] == '' then
  drained()
  return results
end
local fetched = fetchJobs({KEYS[7], KEYS[1], KEYS[8], KEYS[9], KEYS[15], KEYS[6], KEYS[16], KEYS[5], KEYS[10]},
                          {base, ARGV[5], ARGV[6], ARGV[2], ARGV[7], ARGV[8], ARGV[9], ARGV[10]}, true, meta)
-- a fetch that took a job leaves active non-empty: no drained (BullMQ emits it when fetchNext finds none)
if fetched.err or #fetched[1] == 0 then drained() end
return {results, fetched}
