--[[ add_job_scheduler: create or replace a job scheduler and add its first (next) job.

BullMQ 6.7.0 semantics (its addJobScheduler): the scheduler's pending job (delayed, prioritized
or waiting) is removed; for `every` the next time is computed here (first time: now, or the
startDate, or the next slot of the offset; unchanged `every` keeps the pending job's time);
the `repeat:<id>` hash is rewritten (ic kept), ZADD repeat, INCR id, and the job
`repeat:<id>:<next>` is stored (name, data, opts, timestamp, delay, priority, rjk) and goes to
delayed or wait/prioritized.

KEYS[1] repeat   zset   scheduler ids, score = next ms; the scheduler hash is KEYS[1]..':'..id
KEYS[2] delayed  zset   KEYS[3] wait list   KEYS[4] prioritized zset   KEYS[5] pc string
KEYS[6] meta     hash   KEYS[7] marker zset KEYS[8] id string       KEYS[9] events stream
KEYS[10] active  list   read for the global concurrency check
ARGV[1] base (prefix:queue:)   ARGV[2] scheduler id   ARGV[3] next ms (cron; ignored for every)
ARGV[4] scheduler JSON {name, every?, pattern?, tz?, limit?, startDate?, endDate?, offset?}
ARGV[5] template data JSON   ARGV[6] template opts JSON   ARGV[7] the job's opts JSON
ARGV[8] now ms
Returns {job id, delay ms}; -10 when a cron scheduler's job id is taken by a job that is not
its pending one, -11 when 32 `every` slots in a row are taken (BullMQ's codes).
Error: a WRONGTYPE reply naming the first of KEYS that holds the wrong type (nothing changed).
]]
local rcall = redis.call
local bad = wrongType(KEYS, {'zset', 'zset', 'list', 'zset', 'string', 'hash', 'zset', 'string', 'stream', 'list'})
if bad then return bad end
local base, schedulerId = ARGV[1], ARGV[2]
local nextMs = tonumber(ARGV[3])
local sched = cjson.decode(ARGV[4])
local templateData, jobOpts = ARGV[5], cjson.decode(ARGV[7])
local now = tonumber(ARGV[8])
local schedulerKey = KEYS[1] .. ':' .. schedulerId
bad = wrongType({schedulerKey}, {'hash'})
if bad then return bad end
local maxEvents = maxEventsOf(KEYS[6])

local prev = rcall('ZSCORE', KEYS[1], schedulerId)
if prev then prev = tonumber(prev) end
local every = tonumber(sched['every'])
local jobOffset = type(jobOpts['repeat']) == 'table' and tonumber(jobOpts['repeat']['offset']) or nil
local offset = tonumber(sched['offset']) or jobOffset or 0
local newOffset = offset
local updatedEvery = false

if every then
  local millis = prev
  if prev and tonumber(rcall('HGET', schedulerKey, 'every')) ~= every then
    millis = nil
    updatedEvery = true
  end
  if not millis then
    local startDate = tonumber(sched['startDate'])
    if startDate then
      nextMs = math.max(startDate, now)
    elseif offset > 0 then
      nextMs = math.floor(now / every) * every + offset
      if nextMs <= now then nextMs = nextMs + every end
    else
      nextMs = now
    end
  else
    nextMs = millis + every
    if nextMs < now then
      local aligned = math.floor(now / every) * every + offset
      if aligned <= now then nextMs = aligned + every else nextMs = aligned end
    end
  end
  if offset == 0 then newOffset = nextMs - math.floor(nextMs / every) * every end
  nextMs, newOffset = math.floor(nextMs), math.floor(newOffset)
end

-- the scheduler's pending job goes (a running, finished or missing one stays)
local removedPrev = false
if prev then
  local prevId = 'repeat:' .. schedulerId .. ':' .. prev
  local prevKey = base .. prevId
  if rcall('EXISTS', prevKey) == 1 then
    if rcall('ZREM', KEYS[2], prevId) == 1 or rcall('ZREM', KEYS[4], prevId) == 1
        or rcall('LREM', KEYS[3], 1, prevId) > 0 then
      removedPrev = true
      rcall('DEL', prevKey, prevKey .. ':logs', prevKey .. ':dependencies', prevKey .. ':processed',
            prevKey .. ':failed', prevKey .. ':unsuccessful')
    end
  end
end
if removedPrev then
  if every and not updatedEvery then nextMs = prev end
else
  sched['offset'] = newOffset
end

local jobId = 'repeat:' .. schedulerId .. ':' .. nextMs
local collision = false
if rcall('EXISTS', base .. jobId) == 1 then
  if every then
    local scanned, taken = 0, 1
    repeat
      nextMs = nextMs + every
      jobId = 'repeat:' .. schedulerId .. ':' .. nextMs
      scanned = scanned + 1
      taken = rcall('EXISTS', base .. jobId)
    until taken == 0 or scanned >= 32
    if taken == 1 then return -11 end
  else
    collision = true
  end
end
if collision and not removedPrev then return -10 end
local delay = math.max(0, nextMs - now)

-- the scheduler hash, as BullMQ's storeJobScheduler writes it
rcall('ZADD', KEYS[1], nextMs, schedulerId)
local fields = {}
for _, name in ipairs({'tz', 'limit', 'pattern', 'startDate', 'endDate', 'every'}) do
  if sched[name] ~= nil and sched[name] ~= cjson.null then
    table.insert(fields, name)
    table.insert(fields, sched[name])
  end
end
local keptOffset = sched['offset']
if keptOffset == nil or keptOffset == cjson.null then keptOffset = tonumber(rcall('HGET', schedulerKey, 'offset')) end
if keptOffset then
  table.insert(fields, 'offset')
  table.insert(fields, keptOffset)
end
local templateOpts = cjson.encode(cjson.decode(ARGV[6]))
if templateOpts ~= '{}' then
  table.insert(fields, 'opts')
  table.insert(fields, templateOpts)
end
if templateData ~= '{}' then
  table.insert(fields, 'data')
  table.insert(fields, templateData)
end
table.insert(fields, 'ic')
table.insert(fields, rcall('HGET', schedulerKey, 'ic') or 1)
rcall('DEL', schedulerKey)
rcall('HSET', schedulerKey, 'name', sched['name'], unpack(fields))
rcall('INCR', KEYS[8])

-- the job
jobOpts['delay'] = delay
jobOpts['jobId'] = jobId
local prio = tonumber(jobOpts['priority']) or 0
local queueKeys = {wait = KEYS[3], prioritized = KEYS[4], delayed = KEYS[2], pc = KEYS[5], meta = KEYS[6], marker = KEYS[7],
           events = KEYS[9], active = KEYS[10]}
storeAndEnqueue(queueKeys, base, jobId, sched['name'], templateData, cjson.encode(jobOpts), now, delay, prio,
                jobOpts['lifo'], nil, maxEvents)
rcall('HSET', base .. jobId, 'rjk', schedulerId)
return {jobId, delay}
