--[[ bull_clean: delete completed or failed jobs of a legacy Bull 3/4 queue that finished at or
before a cutoff, oldest first, as Bull's cleanJobsInSet script does for those sets: a job whose
lock exists is skipped; the job leaves the set and the `priority` zset, and its hash, logs and
rate-limiter group entry are deleted.

KEYS[1] completed or failed zset  KEYS[2] priority zset  KEYS[3] limiter (stem of `limiter:index`)
ARGV[1] base  ARGV[2] cutoff ms  ARGV[3] batch size
Returns {deleted, skipped_locked, strays} (strays: ids of no job, taken out of the set).
]]
local rcall = redis.call
local bad = wrongType(KEYS, {'zset', 'zset'})
if bad then return bad end
local base = ARGV[1]
local ids = rcall('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
local deleted, locked, strays = 0, 0, 0
for _, id in ipairs(ids) do
  if notAJob(id) or rcall('TYPE', base .. id)['ok'] ~= 'hash' then
    rcall('ZREM', KEYS[1], id)
    strays = strays + 1
  elseif rcall('EXISTS', base .. id .. ':lock') == 1 then
    locked = locked + 1
  else
    rcall('ZREM', KEYS[1], id)
    rcall('ZREM', KEYS[2], id)
    bullDeleteJob(base, id, KEYS[3])
    deleted = deleted + 1
  end
end
return {deleted, locked, strays}
