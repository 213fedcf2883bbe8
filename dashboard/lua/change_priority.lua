--[[ change_priority: a job's new priority, as BullMQ's Job.changePriority (changePriority-7.lua).
A waiting or prioritized job is queued again at its new place: priority 0 to wait (LPUSH, or
RPUSH for lifo), else prioritized (score priority * 2^32 + the next `pc`, or for lifo
priority * 2^32, the front of its priority), with the base marker unless the queue is paused
or at its global concurrency. A job in any other state only gets the new `priority` field (it
is used when the job is next queued).

KEYS[1] wait list  KEYS[2] meta hash  KEYS[3] prioritized zset  KEYS[4] active list
KEYS[5] pc string  KEYS[6] marker zset  KEYS[7] job hash
ARGV[1] priority   ARGV[2] job id   ARGV[3] '1' lifo, else '0'
Returns 0, or -1 when the job does not exist.
Error: a WRONGTYPE reply naming the first key that holds the wrong type (nothing changed).
]]
local rcall = redis.call
local bad = wrongType(KEYS, {'list', 'hash', 'zset', 'list', 'string', 'zset', 'hash'})
if bad then return bad end
if rcall('EXISTS', KEYS[7]) == 0 then return -1 end
local priority, id, lifo = tonumber(ARGV[1]), ARGV[2], ARGV[3] == '1'
local function requeue()
  local flags = rcall('HMGET', KEYS[2], 'paused', 'concurrency')
  local held = flags[1] or (flags[2] and rcall('LLEN', KEYS[4]) >= tonumber(flags[2]))
  if priority == 0 then
    rcall(lifo and 'RPUSH' or 'LPUSH', KEYS[1], id)
    if not held then rcall('ZADD', KEYS[6], 0, '0') end
  elseif lifo then
    rcall('ZADD', KEYS[3], priority * 4294967296, id)
  else
    rcall('ZADD', KEYS[3], priority * 4294967296 + rcall('INCR', KEYS[5]) % 4294967296, id)
    if not held then rcall('ZADD', KEYS[6], 0, '0') end
  end
end
if rcall('ZREM', KEYS[3], id) > 0 or rcall('LREM', KEYS[1], -1, id) > 0 then requeue() end
rcall('HSET', KEYS[7], 'priority', priority)
return 0
