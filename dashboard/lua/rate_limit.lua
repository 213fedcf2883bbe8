--[[ rate_limit: the queue's global rate limit, as BullMQ's Queue.setGlobalRateLimit,
removeGlobalRateLimit and getRateLimitTtl.

KEYS[1] meta hash   KEYS[2] limiter string
ARGV[1] 'set' | 'remove' | 'ttl'
  set:    ARGV[2] max jobs, ARGV[3] duration ms -> HSET meta max, duration; returns 0
  remove: HDEL meta max, duration; returns 0
  ttl:    ARGV[2] max jobs ('0': meta `max`) -> ms until the limiter lets jobs through
          (0 when not limited); with neither a max nor meta `max`, the limiter's PTTL
Error: a WRONGTYPE reply naming the first of KEYS that holds the wrong type (nothing changed).
]]
local rcall = redis.call
local bad = wrongType(KEYS, {'hash', 'string'})
if bad then return bad end
local op = ARGV[1]
if op == 'set' then
  rcall('HSET', KEYS[1], 'max', ARGV[2], 'duration', ARGV[3])
  return 0
elseif op == 'remove' then
  rcall('HDEL', KEYS[1], 'max', 'duration')
  return 0
end
if ARGV[2] ~= '0' then return rateLimitTTL(tonumber(ARGV[2]), KEYS[2]) end
local max = rcall('HGET', KEYS[1], 'max')
if max then return rateLimitTTL(tonumber(max), KEYS[2]) end
return rcall('PTTL', KEYS[2])
