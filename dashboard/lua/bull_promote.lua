--[[ bull_promote: move delayed jobs of a legacy Bull 3/4 queue to waiting now, as Bull's
promote script does: out of `delayed`, into `wait` (or `paused` while the queue is paused) at
the head, or at its priority's place (and the `priority` zset) when it has one; its `delay`
field becomes 0 and `waiting` is published for it. Given ids are promoted if delayed; without
ids, the next `limit` delayed jobs (soonest due first).

KEYS[1] delayed zset  KEYS[2] wait list  KEYS[3] paused list  KEYS[4] meta-paused  KEYS[5] priority zset
ARGV[1] base  ARGV[2] limit  ARGV[3..] job ids (none: the soonest due)
Returns {promoted, ids looked at}; ids of no job (or of Bull's own keys) leave `delayed` unpromoted.
]]
local rcall = redis.call
local bad = wrongType(KEYS, {'zset', 'list', 'list', 'string', 'zset'})
if bad then return bad end
local base = ARGV[1]
local ids = {}
if #ARGV > 2 then
  for i = 3, #ARGV do ids[#ids + 1] = ARGV[i] end
else
  ids = rcall('ZRANGE', KEYS[1], 0, tonumber(ARGV[2]) - 1)
end
local target = bullTarget(KEYS[4], KEYS[2], KEYS[3])
local promoted = 0
for _, id in ipairs(ids) do
  if rcall('ZREM', KEYS[1], id) == 1 and not notAJob(id) and rcall('TYPE', base .. id)['ok'] == 'hash' then
    local priority = tonumber(rcall('HGET', base .. id, 'priority')) or 0
    if priority == 0 then rcall('LPUSH', target, id) else bullAddWithPriority(KEYS[5], priority, id, target) end
    rcall('HSET', base .. id, 'delay', 0)
    rcall('PUBLISH', KEYS[2] .. 'ing@bullpen', id)
    promoted = promoted + 1
  end
end
return {promoted, #ids}
