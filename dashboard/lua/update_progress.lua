--[[ update_progress: store a job's progress (JSON) and announce it on the events stream.

KEYS[1] job hash   KEYS[2] events stream   KEYS[3] meta hash
ARGV[1] job id   ARGV[2] progress JSON
Returns 1, or -1 when the job does not exist.
Error: a WRONGTYPE reply naming the first key that holds the wrong type (nothing changed).
]]
local rcall = redis.call
local bad = wrongType(KEYS, {'hash', 'stream', 'hash'})
if bad then return bad end
if rcall('EXISTS', KEYS[1]) == 0 then return -1 end
rcall('HSET', KEYS[1], 'progress', ARGV[2])
local maxEvents = maxEventsOf(KEYS[3])
rcall('XADD', KEYS[2], 'MAXLEN', '~', maxEvents, '*', 'event', 'progress', 'jobId', ARGV[1], 'data', ARGV[2])
return 1
