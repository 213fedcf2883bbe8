--[[ update_data: replace a job's data (JSON), as BullMQ's Job.updateData (updateData-1.lua).

KEYS[1] job hash
ARGV[1] data JSON
Returns 0, or -1 when the job does not exist.
Error: a WRONGTYPE reply when the job's key is not a hash (nothing changed).
]]
local bad = wrongType(KEYS, {'hash'})
if bad then return bad end
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
redis.call('HSET', KEYS[1], 'data', ARGV[1])
return 0
