--[[ remove_job_scheduler: delete a job scheduler and its pending delayed job (BullMQ 6.7.0's
removeJobScheduler). A job of the scheduler that is waiting, running or finished stays.

KEYS[1] repeat  zset   scheduler ids; the scheduler hash is KEYS[1]..':'..id
KEYS[2] delayed zset   KEYS[3] events stream   KEYS[4] meta hash
ARGV[1] base (prefix:queue:)   ARGV[2] scheduler id
Returns 0 when the scheduler was removed, 1 when there was no such scheduler (BullMQ's codes).
Error: a WRONGTYPE reply naming the first of KEYS that holds the wrong type (nothing changed).
]]
local rcall = redis.call
local bad = wrongType(KEYS, {'zset', 'zset', 'stream', 'hash'})
if bad then return bad end
local base, schedulerId = ARGV[1], ARGV[2]
local millis = rcall('ZSCORE', KEYS[1], schedulerId)
if millis then
  local jobId = 'repeat:' .. schedulerId .. ':' .. millis
  if rcall('ZREM', KEYS[2], jobId) == 1 then
    local jobKey = base .. jobId
    rcall('DEL', jobKey, jobKey .. ':logs', jobKey .. ':dependencies', jobKey .. ':processed',
          jobKey .. ':failed', jobKey .. ':unsuccessful')
    rcall('XADD', KEYS[3], 'MAXLEN', '~', maxEventsOf(KEYS[4]), '*', 'event', 'removed', 'jobId', jobId,
          'prev', 'delayed')
  end
end
if rcall('ZREM', KEYS[1], schedulerId) == 1 then
  rcall('DEL', KEYS[1] .. ':' .. schedulerId)
  return 0
end
return 1
