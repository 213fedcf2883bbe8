--[[ bull_remove: delete one job of a legacy Bull 3/4 queue, as Bull's removeJob script does:
refused while its lock exists; out of every list and set, its hash and logs deleted, its
rate-limiter group entry and debounce key with it.

KEYS[1] active  KEYS[2] wait  KEYS[3] delayed  KEYS[4] paused  KEYS[5] completed  KEYS[6] failed
KEYS[7] priority  KEYS[8] limiter (stem of `limiter:index`)
ARGV[1] base  ARGV[2] job id
Returns 1 removed, -1 no such job, -7 locked.
]]
local rcall = redis.call
local bad = wrongType(KEYS, {'list', 'list', 'zset', 'list', 'zset', 'zset', 'zset'})
if bad then return bad end
local base, id = ARGV[1], ARGV[2]
if notAJob(id) or rcall('TYPE', base .. id)['ok'] ~= 'hash' then return -1 end
if rcall('EXISTS', base .. id .. ':lock') == 1 then return -7 end
rcall('LREM', KEYS[1], 0, id)
rcall('LREM', KEYS[2], 0, id)
rcall('ZREM', KEYS[3], id)
rcall('LREM', KEYS[4], 0, id)
rcall('ZREM', KEYS[5], id)
rcall('ZREM', KEYS[6], id)
rcall('ZREM', KEYS[7], id)
bullDeleteJob(base, id, KEYS[8])
return 1
