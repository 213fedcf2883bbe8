--[[ add_job: store a new job and make it waiting, prioritized or delayed.

KEYS[1] id          string   id counter (INCR on every add, as BullMQ does)
KEYS[2] wait        list     LPUSH (FIFO) or RPUSH (lifo)
KEYS[3] prioritized zset     score priority * 2^32 + pc
KEYS[4] delayed     zset     score due_ms * 4096 + seq
KEYS[5] pc          string   priority counter
KEYS[6] meta        hash     paused, concurrency, opts.maxLenEvents
KEYS[7] marker      zset     "0"@0 = ready, "1"@due = next delayed
KEYS[8] events      stream
KEYS[9] active      list     read for the global concurrency check
ARGV[1] base (prefix:queue:)   ARGV[2] custom id or ''   ARGV[3] name
ARGV[4] data JSON   ARGV[5] opts JSON   ARGV[6] timestamp ms   ARGV[7] delay ms
ARGV[8] priority    ARGV[9] '1' for lifo
Returns {job id, 1 if a job with that custom id already existed (nothing written) else 0}.
]]
local rcall = redis.call
local base, customId = ARGV[1], ARGV[2]
local ts, delay, prio = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local maxEvents = rcall('HGET', KEYS[6], 'opts.maxLenEvents')
if not maxEvents then
  maxEvents = 10000
  rcall('HSET', KEYS[6], 'opts.maxLenEvents', maxEvents)
end
local counter = rcall('INCR', KEYS[1])
local jobId = customId ~= '' and customId or tostring(counter)
local jobKey = base .. jobId
if rcall('EXISTS', jobKey) == 1 then
  rcall('XADD', KEYS[8], 'MAXLEN', '~', maxEvents, '*', 'event', 'duplicated', 'jobId', jobId)
  return {jobId, 1}
end
rcall('HSET', jobKey, 'name', ARGV[3], 'data', ARGV[4], 'opts', ARGV[5], 'timestamp', ts,
      'delay', delay, 'priority', prio)
rcall('XADD', KEYS[8], 'MAXLEN', '~', maxEvents, '*', 'event', 'added', 'jobId', jobId, 'name', ARGV[3])
if delay > 0 then
  local due = ts + delay
  local low, high = due * 4096, (due + 1) * 4096 - 1
  local last = rcall('ZREVRANGEBYSCORE', KEYS[4], high, low, 'WITHSCORES', 'LIMIT', 0, 1)
  local score = low
  if last[2] then score = math.min(tonumber(last[2]) + 1, high) end
  rcall('ZADD', KEYS[4], score, jobId)
  rcall('XADD', KEYS[8], 'MAXLEN', '~', maxEvents, '*', 'event', 'delayed', 'jobId', jobId, 'delay', due)
  local first = rcall('ZRANGE', KEYS[4], 0, 0, 'WITHSCORES')
  rcall('ZADD', KEYS[7], math.floor(tonumber(first[2]) / 4096), '1')
  return {jobId, 0}
end
if prio > 0 then
  local pc = rcall('INCR', KEYS[5])
  rcall('ZADD', KEYS[3], prio * 4294967296 + pc % 4294967296, jobId)
elseif ARGV[9] == '1' then
  rcall('RPUSH', KEYS[2], jobId)
else
  rcall('LPUSH', KEYS[2], jobId)
end
local flags = rcall('HMGET', KEYS[6], 'paused', 'concurrency')
if not flags[1] and not (flags[2] and rcall('LLEN', KEYS[9]) >= tonumber(flags[2])) then
  rcall('ZADD', KEYS[7], 0, '0')
end
rcall('XADD', KEYS[8], 'MAXLEN', '~', maxEvents, '*', 'event', 'waiting', 'jobId', jobId)
return {jobId, 0}
