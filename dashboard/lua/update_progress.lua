--[[ update_progress: store a job's progress (JSON) and announce it on the events stream.

KEYS[1] job hash   KEYS[2] events stream   KEYS[3] meta hash
ARGV[1] job id   ARGV[2] progress JSON
Returns 1, or -1 when the job does not exist.
]]
local rcall = redis.call
if rcall('EXISTS', KEYS[1]) == 0 then return -1 end
rcall('HSET', KEYS[1], 'progress', ARGV[2])
local maxEvents = rcall('HGET', KEYS[3], 'opts.maxLenEvents') or 10000
rcall('XADD', KEYS[2], 'MAXLEN', '~', maxEvents, '*', 'event', 'progress', 'jobId', ARGV[1], 'data', ARGV[2])
return 1
