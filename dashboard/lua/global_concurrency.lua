--[[ global_concurrency: the queue's global concurrency, as BullMQ's Queue.setGlobalConcurrency
(HSET meta concurrency) and removeGlobalConcurrency (HDEL); fetches then take at most that many
jobs active across all workers.

KEYS[1] meta hash
ARGV[1] the concurrency (an integer >= 1), or '' to remove it
Returns 0.
Error: a WRONGTYPE reply when meta is not a hash (nothing changed).
]]
local bad = wrongType(KEYS, {'hash'})
if bad then return bad end
if ARGV[1] == '' then
  redis.call('HDEL', KEYS[1], 'concurrency')
else
  redis.call('HSET', KEYS[1], 'concurrency', ARGV[1])
end
return 0
