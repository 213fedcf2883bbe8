--[[ move_to_delayed: a job whose handler raised Delayed goes active -> delayed, due `delay` ms
after now, as BullMQ's job.moveToDelayed(timestamp, token) followed by a DelayedError does
(moveToDelayed with skipAttempt: no attempt is used up, no failedReason): the lock is released,
the `delay` field set, the job scored in delayed as an add would be, a `delayed` event, and the
marker of the earliest delayed job.

KEYS[1] active list  KEYS[2] delayed zset  KEYS[3] stalled set  KEYS[4] meta hash
KEYS[5] marker zset  KEYS[6] events stream
ARGV[1] base   ARGV[2] job id   ARGV[3] token   ARGV[4] delay ms   ARGV[5] now ms
Returns 0, or -1 job missing (or not a hash), -2 lock missing (or not a string), -6 lock held by
another token, -3 job not in active (its lock is released, as BullMQ's does).
Error: a WRONGTYPE reply naming the first of KEYS that holds the wrong type (nothing changed).
]]
local rcall = redis.call
local bad = wrongType(KEYS, {'list', 'zset', 'set', 'hash', 'zset', 'stream'})
if bad then return bad end
local base, id = ARGV[1], ARGV[2]
local jobKey = base .. id
local given = letGo(jobKey, id, ARGV[3], KEYS[3])
if given then return given end
if rcall('LREM', KEYS[1], -1, id) < 1 then return -3 end
local delay = math.max(math.floor(tonumber(ARGV[4]) or 0), 0)
rcall('HSET', jobKey, 'delay', delay)
delayJob({delayed = KEYS[2], events = KEYS[6], marker = KEYS[5]}, id, tonumber(ARGV[5]), delay, maxEventsOf(KEYS[4]))
return 0
