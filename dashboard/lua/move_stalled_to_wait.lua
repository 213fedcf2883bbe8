--[[ move_stalled_to_wait: the stalled-job check, at most once per interval for all workers.

Phase 1: every id left in `stalled` since the last check whose lock is gone is moved from
active back to the front of wait (stc + 1); past max stalls it gets `defa`, so the next worker
fails it without running it. Phase 2: every id now in active goes into `stalled`; renewing a
lock removes it again.
KEYS[1] stalled set   KEYS[2] wait list   KEYS[3] active list   KEYS[4] stalled-check string
KEYS[5] meta hash     KEYS[6] marker zset KEYS[7] events stream
ARGV[1] base   ARGV[2] max stalled count   ARGV[3] now ms   ARGV[4] stalled interval ms
An id whose job key holds another type than a hash is dropped from active, not re-queued.
Returns the ids moved back to wait, or false when another worker checked within the interval.
Error: a WRONGTYPE reply naming the first of KEYS that holds the wrong type (nothing changed).
]]
local rcall = redis.call
local function refuse()
  return wrongType(KEYS, {'set', 'list', 'list', 'string', 'hash', 'zset', 'stream'}) or tryError
end
-- Checks before the first write (SET), at the fewest commands: stalled-check by TYPE (which also
-- says whether another worker checked), meta and stalled by the reads (pcall), the rest by TYPE.
local checkedBy = typeOf(KEYS[4])
if checkedBy == 'string' then return false end
local flags = checkedBy == 'none' and try('HMGET', KEYS[5], 'opts.maxLenEvents', 'paused')
local suspects = flags and try('SMEMBERS', KEYS[1])
if not suspects or wrongType({KEYS[2], KEYS[3], KEYS[6], KEYS[7]}, {'list', 'list', 'zset', 'stream'}) then
  return refuse()
end
rcall('SET', KEYS[4], ARGV[3], 'PX', ARGV[4])
local base, maxStalled = ARGV[1], tonumber(ARGV[2])
local maxEvents, paused = maxEventsFrom(flags[1]), flags[2] ~= false
local moved = {}
rcall('DEL', KEYS[1])
for _, id in ipairs(suspects) do
  local jobKey = base .. id
  if rcall('EXISTS', jobKey .. ':lock') == 0 and rcall('LREM', KEYS[3], 1, id) > 0 then
    if typeOf(jobKey) == 'hash' then
      local stc = bump(jobKey, 'stc')  -- nil: spoiled by another tool; the worker fails the job
      if stc and stc > maxStalled and rcall('HEXISTS', jobKey, 'rjk') == 0 then
        rcall('HSET', jobKey, 'defa', 'job stalled more than allowable limit')
      end
      rcall('RPUSH', KEYS[2], id)
      rcall('XADD', KEYS[7], 'MAXLEN', '~', maxEvents, '*', 'event', 'waiting', 'jobId', id, 'prev', 'active')
      rcall('XADD', KEYS[7], 'MAXLEN', '~', maxEvents, '*', 'event', 'stalled', 'jobId', id)
      moved[#moved + 1] = id
    end
  end
end
if #moved > 0 and not paused then rcall('ZADD', KEYS[6], 0, '0') end
local active = rcall('LRANGE', KEYS[3], 0, -1)
for i = 1, #active, 1000 do
  rcall('SADD', KEYS[1], unpack(active, i, math.min(i + 999, #active)))
end
return moved
