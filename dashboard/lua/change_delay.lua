--[[ change_delay: a delayed job runs `delay` ms after now instead, as BullMQ's Job.changeDelay
(changeDelay-4.lua): the job's `delay` field, its score in delayed (the same tie-break within a
millisecond as an add), a `delayed` event and the marker of the earliest delayed job.

KEYS[1] delayed zset  KEYS[2] meta hash  KEYS[3] marker zset  KEYS[4] events stream
KEYS[5] job hash
ARGV[1] delay ms   ARGV[2] now ms   ARGV[3] job id
Returns 0, -1 when the job does not exist, -3 when it is not delayed.
Error: a WRONGTYPE reply naming the first key that holds the wrong type (nothing changed).
]]
local rcall = redis.call
local bad = wrongType(KEYS, {'zset', 'hash', 'zset', 'stream', 'hash'})
if bad then return bad end
if rcall('EXISTS', KEYS[5]) == 0 then return -1 end
local id, delay = ARGV[3], tonumber(ARGV[1])
local due = delay > 0 and tonumber(ARGV[2]) + delay or tonumber(ARGV[2])
local low, high = due * 4096, (due + 1) * 4096 - 1
local last = rcall('ZREVRANGEBYSCORE', KEYS[1], high, low, 'WITHSCORES', 'LIMIT', 0, 1)
local score = low
if last[2] then score = math.min(tonumber(last[2]) + 1, high) end
if rcall('ZREM', KEYS[1], id) < 1 then return -3 end
rcall('HSET', KEYS[5], 'delay', delay)
rcall('ZADD', KEYS[1], score, id)
rcall('XADD', KEYS[4], 'MAXLEN', '~', maxEventsOf(KEYS[2]), '*', 'event', 'delayed', 'jobId', id, 'delay', due)
local first = rcall('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if first[2] then rcall('ZADD', KEYS[3], math.floor(tonumber(first[2]) / 4096), '1') end
return 0
