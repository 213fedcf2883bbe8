--[[ delete_jobs: take up to N job ids out of one state and delete those jobs, in one bounded
batch. Serves clean (completed/failed older than a cutoff), drain (wait, prioritized, delayed)
and obliterate (every state). Oldest first. A deduplication slot `de:<deid>` naming a deleted
job goes too, with the add it kept (`dn:<deid>`), as BullMQ's job removal does.

KEYS[1] the state key (list or zset)   KEYS[2] events stream   KEYS[3] meta hash
ARGV[1] base   ARGV[2] 'list' | 'zset'   ARGV[3] highest score to take (zset; '+inf' for all)
ARGV[4] batch size   ARGV[5] event to emit with the count ('cleaned' or '')
ARGV[6] '1' to delete locked (active) jobs too, else they are put back and skipped
A flow child's parent stops waiting for it, as in remove_job (_parent.lua).
Returns {deleted, skipped_locked, strays}: strays are ids of BullMQ's bookkeeping keys (such as
'meta') found in the state: taken out of it, their keys never deleted.
]]
local rcall = redis.call
local base, limit = ARGV[1], tonumber(ARGV[4])
local ids
if ARGV[2] == 'list' then
  ids = rcall('LRANGE', KEYS[1], -limit, -1)
else
  ids = rcall('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[3], 'LIMIT', 0, limit)
end
local deleted, locked, strays = 0, 0, 0
for _, id in ipairs(ids) do
  local jobKey = base .. id
  if notAJob(id) then
    if ARGV[2] == 'list' then rcall('LREM', KEYS[1], -1, id) else rcall('ZREM', KEYS[1], id) end
    strays = strays + 1
  elseif ARGV[6] ~= '1' and rcall('EXISTS', jobKey .. ':lock') == 1 then
    locked = locked + 1
  else
    if ARGV[2] == 'list' then rcall('LREM', KEYS[1], -1, id) else rcall('ZREM', KEYS[1], id) end
    local deid = rcall('HGET', jobKey, 'deid')
    if deid and rcall('GET', base .. 'de:' .. deid) == id then rcall('DEL', base .. 'de:' .. deid, base .. 'dn:' .. deid) end
    detachFromParent(jobKey, base)  -- _parent.lua: a flow's parent stops waiting for it
    rcall('DEL', jobKey, jobKey .. ':logs', jobKey .. ':lock', jobKey .. ':dependencies',
          jobKey .. ':processed', jobKey .. ':failed', jobKey .. ':unsuccessful')
    deleted = deleted + 1
  end
end
if deleted > 0 and ARGV[5] ~= '' then
  local maxEvents = rcall('HGET', KEYS[3], 'opts.maxLenEvents') or 10000
  rcall('XADD', KEYS[2], 'MAXLEN', '~', maxEvents, '*', 'event', ARGV[5], 'count', deleted)
end
return {deleted, locked, strays}
