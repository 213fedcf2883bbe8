--[[ move_limited_to_wait: a job whose handler raised RateLimited goes active -> back to the
front of wait (or back into prioritized, ahead of its priority), as BullMQ's
moveJobFromActiveToWait does for a RateLimitError; first the limiter is set as BullMQ's
queue.rateLimit(ms) sets it, so no worker with a rate limit takes a job for that long.

KEYS[1] active list   KEYS[2] wait list    KEYS[3] prioritized zset   KEYS[4] stalled set
KEYS[5] meta hash     KEYS[6] limiter string KEYS[7] marker zset      KEYS[8] events stream
ARGV[1] base   ARGV[2] job id   ARGV[3] token   ARGV[4] delay ms (0 = leave the limiter as it is)
Returns the limiter's PTTL ms (0 when it has none), or -1 job missing (or not a hash),
-2 lock missing (or not a string), -6 other token. A job no longer in active is not moved
(BullMQ's behaviour): only its lock is released.
Error: a WRONGTYPE reply naming the first of KEYS that holds the wrong type (nothing changed).
]]
local rcall = redis.call
local bad = wrongType(KEYS, {'list', 'list', 'zset', 'set', 'hash', 'string', 'zset', 'stream'})
if bad then return bad end
local base, id = ARGV[1], ARGV[2]
local jobKey = base .. id
local given = letGo(jobKey, id, ARGV[3], KEYS[4])
if given then return given end
local delay = math.floor(tonumber(ARGV[4]) or 0)
if delay > 0 then rcall('SET', KEYS[6], '9007199254740991', 'PX', delay) end
if rcall('LREM', KEYS[1], 1, id) > 0 then
  local flags = rcall('HMGET', KEYS[5], 'paused', 'concurrency')
  local maxed = flags[1] or (tonumber(flags[2]) and rcall('LLEN', KEYS[1]) >= tonumber(flags[2]))
  local prio = priorityOf(jobKey)
  if prio > 0 then
    rcall('ZADD', KEYS[3], prio * 4294967296, id)
  else
    rcall('RPUSH', KEYS[2], id)
  end
  if not maxed then rcall('ZADD', KEYS[7], 0, '0') end
  rcall('XADD', KEYS[8], 'MAXLEN', '~', maxEventsOf(KEYS[5]), '*', 'event', 'waiting', 'jobId', id, 'prev', 'active')
end
local pttl = rcall('PTTL', KEYS[6])
if pttl > 0 then return pttl end
return 0
