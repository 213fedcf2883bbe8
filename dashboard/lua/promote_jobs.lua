--[[ promote_jobs: delayed -> waiting now, in one bounded batch (the earliest due first).

KEYS[1] delayed zset  KEYS[2] wait list  KEYS[3] prioritized zset  KEYS[4] pc string
KEYS[5] marker zset   KEYS[6] events stream  KEYS[7] meta hash
ARGV[1] base   ARGV[2] batch size (ignored when ids are given)   ARGV[3..] explicit ids (optional)
Returns how many jobs were promoted. Ids of BullMQ's bookkeeping keys (such as 'meta') are
taken out of delayed and counted, their keys left untouched.
]]
local rcall = redis.call
local base = ARGV[1]
local ids
if #ARGV >= 3 then
  ids = {}
  for i = 3, #ARGV do ids[#ids + 1] = ARGV[i] end
else
  ids = rcall('ZRANGE', KEYS[1], 0, tonumber(ARGV[2]) - 1)
end
local maxEvents = rcall('HGET', KEYS[7], 'opts.maxLenEvents') or 10000
local moved = 0
for _, id in ipairs(ids) do
  if notAJob(id) then
    moved = moved + rcall('ZREM', KEYS[1], id)
  elseif rcall('ZREM', KEYS[1], id) == 1 then
    local jobKey = base .. id
    lineUp(jobKey, id, KEYS[2], KEYS[3], KEYS[4])
    rcall('HSET', jobKey, 'delay', 0)
    rcall('XADD', KEYS[6], 'MAXLEN', '~', maxEvents, '*', 'event', 'waiting', 'jobId', id, 'prev', 'delayed')
    moved = moved + 1
  end
end
if moved > 0 then
  if rcall('HEXISTS', KEYS[7], 'paused') == 0 then rcall('ZADD', KEYS[5], 0, '0') end
  local first = rcall('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  if first[2] then rcall('ZADD', KEYS[5], math.floor(tonumber(first[2]) / 4096), '1')
  else rcall('ZREM', KEYS[5], '1') end
end
return moved
