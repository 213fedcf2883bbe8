--[[ retry_job: a failed attempt that has attempts left goes active -> delayed (backoff) or
wait/prioritized (no backoff). Never through failed.

KEYS[1] active list  KEYS[2] wait list  KEYS[3] delayed zset  KEYS[4] prioritized zset
KEYS[5] pc string    KEYS[6] marker zset KEYS[7] events stream KEYS[8] meta hash
KEYS[9] stalled set
ARGV[1] base   ARGV[2] job id   ARGV[3] token   ARGV[4] now ms   ARGV[5] backoff ms (0 = none)
ARGV[6] failed reason   ARGV[7] stack trace to append   ARGV[8] stack traces to keep
ARGV[9] '1' when the job is lifo
Returns attempts made, or -1 job missing (or not a hash), -2 lock missing (or not a string),
-6 other token, -3 not active.
Error: a WRONGTYPE reply naming the first of KEYS that holds the wrong type (nothing changed);
keys this retry does not write are not checked (delayed without a backoff; pc, prioritized,
wait and, when paused, marker with one).
]]
local rcall = redis.call
local function refuse()
  return wrongType(KEYS, {'list', 'list', 'zset', 'zset', 'string', 'zset', 'stream', 'hash', 'set'}) or tryError
end
local base, id, now, backoff = ARGV[1], ARGV[2], tonumber(ARGV[4]), tonumber(ARGV[5]) or 0
local jobKey = base .. id
-- Checks before the first write, at the fewest commands: meta by this read (pcall), stalled by
-- the first write (SREM), the other keys this retry writes by TYPE.
local flags = try('HMGET', KEYS[8], 'opts.maxLenEvents', 'paused')
if not flags then return refuse() end
local job = redis.pcall('HMGET', jobKey, 'processedOn', 'stacktrace', 'priority', 'ats')
local prio = (job.err or backoff > 0) and 0 or priorityFrom(job[3])
local checks, types = {KEYS[1], KEYS[7]}, {'list', 'stream'}
local function writes(i, kind) checks[#checks + 1] = KEYS[i]; types[#types + 1] = kind end
if backoff > 0 then writes(3, 'zset')
elseif prio > 0 then writes(4, 'zset'); writes(5, 'string')
else writes(2, 'list') end
if backoff > 0 or not flags[2] then writes(6, 'zset') end
if wrongType(checks, types) then return refuse() end
if job.err or (not job[1] and rcall('EXISTS', jobKey) == 0) then return -1 end
local held = notHeld(jobKey, ARGV[3])
if held then return held end
if not try('SREM', KEYS[9], id) then return refuse() end  -- the first write: when it fails nothing changed
rcall('DEL', jobKey .. ':lock')
if rcall('LREM', KEYS[1], -1, id) == 0 then return -3 end

rcall('HSET', jobKey, 'failedReason', ARGV[6], 'stacktrace', appendTrace(job[2], ARGV[7], traceLimitOf(ARGV[8])),
      attemptFields(job[1], job[4], now, 'retried'))  -- _attempts.lua
local atm = bump(jobKey, 'atm') or 1
local maxEvents = maxEventsFrom(flags[1])

if backoff > 0 then
  local due = now + backoff
  local low, high = due * 4096, (due + 1) * 4096 - 1
  local last = rcall('ZREVRANGEBYSCORE', KEYS[3], high, low, 'WITHSCORES', 'LIMIT', 0, 1)
  local score = low
  if last[2] then score = math.min(tonumber(last[2]) + 1, high) end
  rcall('ZADD', KEYS[3], score, id)
  rcall('HSET', jobKey, 'delay', backoff)
  rcall('XADD', KEYS[7], 'MAXLEN', '~', maxEvents, '*', 'event', 'delayed', 'jobId', id, 'delay', due)
  local first = rcall('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
  rcall('ZADD', KEYS[6], math.floor(tonumber(first[2]) / 4096), '1')
  return atm
end

if prio > 0 then
  local pc = rcall('INCR', KEYS[5])
  rcall('ZADD', KEYS[4], prio * 4294967296 + pc % 4294967296, id)
elseif ARGV[9] == '1' then
  rcall('RPUSH', KEYS[2], id)
else
  rcall('LPUSH', KEYS[2], id)
end
if not flags[2] then rcall('ZADD', KEYS[6], 0, '0') end
rcall('XADD', KEYS[7], 'MAXLEN', '~', maxEvents, '*', 'event', 'waiting', 'jobId', id, 'prev', 'active')
return atm
