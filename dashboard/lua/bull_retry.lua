--[[ bull_retry: move failed (or completed) jobs of a legacy Bull 3/4 queue back to waiting,
as Bull's reprocessJob script (`job.retry()`) does: a job whose lock exists is left alone; its
finishedOn, processedOn and failedReason go, retriedOn is set; it goes to `wait` (or `paused`
while the queue is paused) at the head, at the tail when its opts say lifo. Like Bull,
attemptsMade is kept and priorities are not re-applied. Given ids are retried if in the state;
without ids, up to `limit` jobs that finished at or before `cutoff`, oldest first.

KEYS[1] failed or completed zset  KEYS[2] wait list  KEYS[3] paused list  KEYS[4] meta-paused
ARGV[1] base  ARGV[2] now ms  ARGV[3] cutoff ms  ARGV[4] limit  ARGV[5..] job ids
Returns {retried, ids looked at, locked}.
]]
local rcall = redis.call
local bad = wrongType(KEYS, {'zset', 'list', 'list', 'string'})
if bad then return bad end
local base = ARGV[1]
local ids = {}
if #ARGV > 4 then
  for i = 5, #ARGV do ids[#ids + 1] = ARGV[i] end
else
  ids = rcall('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[3], 'LIMIT', 0, tonumber(ARGV[4]))
end
local target = bullTarget(KEYS[4], KEYS[2], KEYS[3])
local retried, locked = 0, 0
for _, id in ipairs(ids) do
  local jobKey = base .. id
  if notAJob(id) or rcall('TYPE', jobKey)['ok'] ~= 'hash' then
    rcall('ZREM', KEYS[1], id)  -- not a job: it leaves the set, nothing is queued
  elseif rcall('EXISTS', jobKey .. ':lock') == 1 then
    locked = locked + 1
  elseif rcall('ZREM', KEYS[1], id) == 1 then
    rcall('HDEL', jobKey, 'finishedOn', 'processedOn', 'failedReason')
    rcall('HSET', jobKey, 'retriedOn', ARGV[2])
    local lifo = false
    local ok, opts = pcall(cjson.decode, rcall('HGET', jobKey, 'opts') or '{}')
    if ok and type(opts) == 'table' and opts['lifo'] == true then lifo = true end
    rcall(lifo and 'RPUSH' or 'LPUSH', target, id)
    rcall('PUBLISH', KEYS[2] .. 'ing@bullpen', id)
    retried = retried + 1
  end
end
return {retried, #ids, locked}
