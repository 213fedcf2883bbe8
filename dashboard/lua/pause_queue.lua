--[[ pause_queue: set or clear the queue's paused flag (BullMQ 6 semantics: jobs stay in wait),
with Bullpen's record of why and until when (a hash BullMQ never reads).
On resume, a legacy `paused` list left by BullMQ <= 5 is moved back into wait, at most 7000
ids per call (the caller repeats while the return value says more remain).

KEYS[1] meta hash  KEYS[2] marker zset  KEYS[3] events stream  KEYS[4] wait list
KEYS[5] prioritized zset  KEYS[6] delayed zset  KEYS[7] paused list (legacy)
KEYS[8] pause record hash (reason, by, since, until)
ARGV[1] 'pause' | 'resume' | 'resume-if-due'
  pause: ARGV[2] reason  ARGV[3] by  ARGV[4] now ms  ARGV[5] resume at ms (0: never by itself)
  resume-if-due: ARGV[2] now ms; resumes only when the record says it is due, and deletes the
  record in the same step, so exactly one caller (dashboard or worker) does it
Returns the number of legacy paused ids still left to migrate (0 when done); -1 when
resume-if-due found nothing due.
]]
local rcall = redis.call
local maxEvents = rcall('HGET', KEYS[1], 'opts.maxLenEvents') or 10000
if ARGV[1] == 'pause' then
  rcall('HSET', KEYS[1], 'paused', 1)
  rcall('DEL', KEYS[2], KEYS[8])
  rcall('HSET', KEYS[8], 'reason', ARGV[2], 'by', ARGV[3], 'since', ARGV[4], 'until', ARGV[5])
  rcall('XADD', KEYS[3], 'MAXLEN', '~', maxEvents, '*', 'event', 'paused')
  return 0
end
if ARGV[1] == 'resume-if-due' then
  local due = tonumber(rcall('HGET', KEYS[8], 'until') or '0') or 0
  if rcall('HEXISTS', KEYS[1], 'paused') == 0 then rcall('DEL', KEYS[8]) return -1 end  -- resumed elsewhere
  if due <= 0 or due > tonumber(ARGV[2]) then return -1 end
end
rcall('DEL', KEYS[8])
local wasPaused = rcall('HDEL', KEYS[1], 'paused') == 1
local legacy = rcall('LLEN', KEYS[7])
if legacy > 0 then
  if rcall('EXISTS', KEYS[4]) == 0 and legacy <= 7000 then
    rcall('RENAME', KEYS[7], KEYS[4])
    legacy = 0
  else
    local ids = rcall('LRANGE', KEYS[7], -7000, -1)
    -- oldest last, so it ends at the right end of wait and runs first
    for i = 1, #ids do rcall('RPUSH', KEYS[4], ids[i]) end
    rcall('LTRIM', KEYS[7], 0, -#ids - 1)
    legacy = rcall('LLEN', KEYS[7])
  end
end
if rcall('LLEN', KEYS[4]) + rcall('ZCARD', KEYS[5]) > 0 then
  rcall('ZADD', KEYS[2], 0, '0')
else
  local first = rcall('ZRANGE', KEYS[6], 0, 0, 'WITHSCORES')
  if first[2] then rcall('ZADD', KEYS[2], math.floor(tonumber(first[2]) / 4096), '1') end
end
if wasPaused then rcall('XADD', KEYS[3], 'MAXLEN', '~', maxEvents, '*', 'event', 'resumed') end
return legacy
