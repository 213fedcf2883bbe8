--[[ add_next_scheduled: a worker took a job scheduler's job; add the scheduler's next job.

BullMQ 6.7.0 semantics (its updateJobScheduler): nothing happens unless the scheduler still
exists and the taken job is the scheduler's current one (`repeat:<id>:<ZSCORE repeat id>`).
Then the next job `repeat:<id>:<next>` is stored as BullMQ stores it (hash fields name, data,
opts, timestamp, delay, priority, rjk), ZADD repeat, HINCRBY ic, INCR id, and it goes to
delayed (next in the future) or wait/prioritized. For an `every` scheduler the next time is
computed here from the stored one (prev + every, or the next slot of the offset when that is
already past); for a cron pattern the caller computes it (ARGV[4]).

KEYS[1] repeat   zset   scheduler ids, score = next ms; the scheduler hash is KEYS[1]..':'..id
KEYS[2] delayed  zset   KEYS[3] wait list   KEYS[4] prioritized zset   KEYS[5] pc string
KEYS[6] meta     hash   KEYS[7] marker zset KEYS[8] id string       KEYS[9] events stream
KEYS[10] active  list   read for the global concurrency check
ARGV[1] base (prefix:queue:)   ARGV[2] scheduler id   ARGV[3] id of the job that was taken
ARGV[4] next ms (cron) or '' (every: computed here)   ARGV[5] now ms
ARGV[6] the next job's opts JSON (jobId and delay are set here)
ARGV[7] '1' when the id looks like a legacy repeat key: then only a scheduler hash with `ic`
        counts as a scheduler (as BullMQ's isJobScheduler)
Returns the next job's id; '' when nothing was added (no such scheduler, the taken job is not
its current one, or the next job exists already: then a `duplicated` event, as BullMQ).
Error: a WRONGTYPE reply naming the first of KEYS that holds the wrong type (nothing changed).
]]
local rcall = redis.call
local bad = wrongType(KEYS, {'zset', 'zset', 'list', 'zset', 'string', 'hash', 'zset', 'string', 'stream', 'list'})
if bad then return bad end
local base, schedulerId, producerId = ARGV[1], ARGV[2], ARGV[3]
local now = tonumber(ARGV[5])
local schedulerKey = KEYS[1] .. ':' .. schedulerId
if typeOf(schedulerKey) ~= 'hash' and typeOf(schedulerKey) ~= 'none' then return '' end
if ARGV[7] == '1' and rcall('HEXISTS', schedulerKey, 'ic') == 0 then return '' end
local prev = rcall('ZSCORE', KEYS[1], schedulerId)
if not prev then return '' end
prev = tonumber(prev)
local opts = cjson.decode(ARGV[6])
if type(opts['repeat']) ~= 'table' then opts['repeat'] = {} end
local attrs = rcall('HMGET', schedulerKey, 'name', 'data', 'every', 'startDate', 'offset')
local every = tonumber(attrs[3]) or tonumber(opts['repeat']['every'])
local nextMs = tonumber(ARGV[4])

if every then
  -- BullMQ's getJobSchedulerEveryNextMillis, for a scheduler that has a previous time
  local offset = tonumber(attrs[5]) or tonumber(opts['repeat']['offset']) or 0
  nextMs = prev + every
  if nextMs < now then
    local aligned = math.floor(now / every) * every + offset
    if aligned <= now then nextMs = aligned + every else nextMs = aligned end
  end
  nextMs = math.floor(nextMs)
end
if not nextMs then return '' end

if producerId ~= 'repeat:' .. schedulerId .. ':' .. prev then return '' end
local maxEvents = maxEventsOf(KEYS[6])
local nextId = 'repeat:' .. schedulerId .. ':' .. nextMs
local nextKey = schedulerKey .. ':' .. nextMs
if rcall('EXISTS', nextKey) == 1 then
  rcall('XADD', KEYS[9], 'MAXLEN', '~', maxEvents, '*', 'event', 'duplicated', 'jobId', nextId)
  return ''
end
rcall('ZADD', KEYS[1], nextMs, schedulerId)
bump(schedulerKey, 'ic')
rcall('INCR', KEYS[8])
local delay = math.max(0, nextMs - now)
opts['delay'] = delay
opts['jobId'] = nextId
local name = attrs[1] or ''
local prio = tonumber(opts['priority']) or 0
local queueKeys = {wait = KEYS[3], prioritized = KEYS[4], delayed = KEYS[2], pc = KEYS[5], meta = KEYS[6], marker = KEYS[7],
           events = KEYS[9], active = KEYS[10]}
storeAndEnqueue(queueKeys, ARGV[1], nextId, name, attrs[2] or '{}', cjson.encode(opts), now, delay, prio,
                opts['lifo'], nil, maxEvents)
rcall('HSET', nextKey, 'rjk', schedulerId)
return nextId
