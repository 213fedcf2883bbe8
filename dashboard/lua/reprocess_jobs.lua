--[[ reprocess_jobs: failed or completed -> waiting (the dashboard's retry), in one bounded batch.
A retried job starts over: attempts made/started and stalls are reset, so it gets all its
attempts again; its stack traces are kept as history. Priority is kept.

KEYS[1] source zset (failed or completed)  KEYS[2] wait list  KEYS[3] prioritized zset
KEYS[4] pc string  KEYS[5] marker zset  KEYS[6] events stream  KEYS[7] meta hash
ARGV[1] base   ARGV[2] source state name ('failed' | 'completed')
ARGV[3] finished at or before this ms   ARGV[4] batch size (ignored when ids are given)
ARGV[5..] explicit job ids (optional)
A flow child filed by its parent as done goes back to the parent's `:dependencies` (_parent.lua).
Returns {moved to waiting, ids taken from the source set (ids whose hash is gone are dropped,
and so are ids of BullMQ's bookkeeping keys, such as 'meta': their keys are left untouched)}.
]]
local rcall = redis.call
local base = ARGV[1]
local ids
if #ARGV >= 5 then
  ids = {}
  for i = 5, #ARGV do ids[#ids + 1] = ARGV[i] end
else
  ids = rcall('ZRANGEBYSCORE', KEYS[1], 0, ARGV[3], 'LIMIT', 0, tonumber(ARGV[4]))
end
local maxEvents = rcall('HGET', KEYS[7], 'opts.maxLenEvents') or 10000
local moved = 0
for _, id in ipairs(ids) do
  local jobKey = base .. id
  if notAJob(id) then
    rcall('ZREM', KEYS[1], id)
  elseif rcall('ZREM', KEYS[1], id) == 1 then
    if rcall('EXISTS', jobKey) == 1 then
      rcall('HDEL', jobKey, 'finishedOn', 'processedOn', 'failedReason', 'returnvalue', 'defa')
      rcall('HSET', jobKey, 'atm', 0, 'ats', 0, 'stc', 0)
      childBackToParent(jobKey, ARGV[2])  -- _parent.lua: a flow child is pending for its parent again
      lineUp(jobKey, id, KEYS[2], KEYS[3], KEYS[4])
      rcall('XADD', KEYS[6], 'MAXLEN', '~', maxEvents, '*', 'event', 'waiting', 'jobId', id, 'prev', ARGV[2])
      moved = moved + 1
    end
  end
end
if moved > 0 and rcall('HEXISTS', KEYS[7], 'paused') == 0 then rcall('ZADD', KEYS[5], 0, '0') end
return {moved, #ids}
