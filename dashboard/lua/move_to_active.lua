--[[ move_to_active: promote due delayed jobs, then take up to N ready jobs and lock them.

KEYS[1] wait  list   KEYS[2] active  list   KEYS[3] prioritized zset   KEYS[4] delayed zset
KEYS[5] pc    string KEYS[6] meta    hash   KEYS[7] marker      zset   KEYS[8] events  stream
KEYS[9] limiter string
ARGV[1] base   ARGV[2] token prefix (each job's token is prefix .. ':' .. n)
ARGV[3] lock duration ms   ARGV[4] now ms   ARGV[5] most jobs to take   ARGV[6] worker name or ''
ARGV[7] the worker limiter's max ('' for none)   ARGV[8] its duration ms ('' for none)
Rate limit as BullMQ's moveToActive: max is meta `max` else the worker's, duration the
worker's else meta `duration`; each job taken (but deferred failures) INCRs `limiter`, which
gets PEXPIRE duration when it becomes 1; while `limiter` >= max and has a TTL, nothing is taken.
Returns {taken, next_due, dropped, limited}: taken is a flat list id, token, {hash fields...} per job
(wait first, then prioritized, as BullMQ serves them); next_due is the due ms of the earliest
delayed job, or -1 when nothing is delayed; dropped lists {id, type} for each id taken off the
queue because its job key holds another type than a hash, or is one of BullMQ's bookkeeping
keys (type 'bookkeeping': such a key is never written; ids whose hash is gone are dropped
silently); limited is the limiter's PTTL ms when the rate limit stopped the fetch, else 0.
Error: a WRONGTYPE reply naming the first of KEYS that holds the wrong type (nothing changed).
]]
local rcall = redis.call
local bad = wrongType(KEYS, {'list', 'list', 'zset', 'zset', 'string', 'hash', 'zset', 'stream', 'string'})
if bad then return bad end
local base, now = ARGV[1], tonumber(ARGV[4])
local maxEvents = maxEventsOf(KEYS[6])
local flags = rcall('HMGET', KEYS[6], 'paused', 'concurrency', 'max', 'duration')
local paused = flags[1]
local maxJobs, duration = tonumber(flags[3] or ARGV[7]), tonumber(ARGV[8] ~= '' and ARGV[8] or flags[4]) or 0

-- Promote delayed jobs that are due, at most 1000 per call (BullMQ does this in every fetch).
local due = rcall('ZRANGEBYSCORE', KEYS[4], 0, (now + 1) * 4096 - 1, 'LIMIT', 0, 1000)
for _, id in ipairs(due) do
  rcall('ZREM', KEYS[4], id)
  local prio = priorityOf(base .. id)
  if prio > 0 then
    local pc = rcall('INCR', KEYS[5])
    rcall('ZADD', KEYS[3], prio * 4294967296 + pc % 4294967296, id)
  else
    rcall('LPUSH', KEYS[1], id)
  end
  redis.pcall('HSET', base .. id, 'delay', 0)
  rcall('XADD', KEYS[8], 'MAXLEN', '~', maxEvents, '*', 'event', 'waiting', 'jobId', id, 'prev', 'delayed')
end
if #due > 0 and not paused then rcall('ZADD', KEYS[7], 0, '0') end

local function nextDue()
  local first = rcall('ZRANGE', KEYS[4], 0, 0, 'WITHSCORES')
  if first[2] then return math.floor(tonumber(first[2]) / 4096) end
  return -1
end

local limited = rateLimitTTL(maxJobs, KEYS[9])
if limited > 0 then return {{}, nextDue(), {}, limited} end
local want = tonumber(ARGV[5])
local limit = tonumber(flags[2])
if limit and limit == limit then want = math.min(want, limit - rcall('LLEN', KEYS[2])) end
if paused or want < 1 then return {{}, nextDue(), {}, 0} end

local function nextId()
  local id = rcall('RPOPLPUSH', KEYS[1], KEYS[2])
  if id then return id end
  local popped = rcall('ZPOPMIN', KEYS[3])
  if not popped[1] then return nil end
  rcall('LPUSH', KEYS[2], popped[1])
  return popped[1]
end

local taken, dropped, n = {}, {}, 0
while n < want do
  if maxJobs then
    limited = rateLimitTTL(maxJobs, KEYS[9])
    if limited > 0 then break end
  end
  local id = nextId()
  if not id then break end
  local jobKey = base .. id
  local kind = notAJob(id) and 'bookkeeping' or typeOf(jobKey)  -- 'meta' pushed into wait is no job
  if kind ~= 'hash' then
    rcall('LREM', KEYS[2], 1, id)  -- its hash was deleted or overwritten by another tool: run nothing
    if kind ~= 'none' then dropped[#dropped + 1] = {id, kind} end
  else
    n = n + 1
    if maxJobs and rcall('HEXISTS', jobKey, 'defa') == 0 and redis.pcall('INCR', KEYS[9]) == 1 then
      rcall('PEXPIRE', KEYS[9], math.floor(math.abs(duration)))
    end
    local token = ARGV[2] .. ':' .. n
    rcall('SET', jobKey .. ':lock', token, 'PX', ARGV[3])
    if ARGV[6] ~= '' then
      rcall('HSET', jobKey, 'processedOn', now, 'pb', ARGV[6])
    else
      rcall('HSET', jobKey, 'processedOn', now)
    end
    bump(jobKey, 'ats')  -- a count another tool spoiled stays as it is: the worker fails that job
    rcall('XADD', KEYS[8], 'MAXLEN', '~', maxEvents, '*', 'event', 'active', 'jobId', id, 'prev', 'waiting')
    taken[#taken + 1] = id
    taken[#taken + 1] = token
    taken[#taken + 1] = rcall('HGETALL', jobKey)
  end
end
if #taken > 0 then
  rcall('ZADD', KEYS[7], 0, '0')
  return {taken, -1, dropped, limited}
end
return {taken, nextDue(), dropped, limited}
