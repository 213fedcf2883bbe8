--[[ remove_job: delete one job, its sub-keys and its place in whichever state holds it.
Refuses a job whose lock exists (a worker is running it), as BullMQ does. A deduplication
slot `de:<deid>` naming the job is deleted with the add it kept (`dn:<deid>`), as BullMQ does.

KEYS[1] wait  KEYS[2] active  KEYS[3] prioritized  KEYS[4] delayed  KEYS[5] completed
KEYS[6] failed  KEYS[7] waiting-children  KEYS[8] paused (legacy list)  KEYS[9] events
KEYS[10] meta  KEYS[11] stalled  KEYS[12] repeat (job scheduler ids, score = next ms)
ARGV[1] base   ARGV[2] job id
A flow child's parent stops waiting for it (the last one releases the parent, or deletes it when
it is in the same queue, as BullMQ does: _parent.lua).
Returns 1 when removed, -1 job missing, -7 job locked, -8 the job is its job scheduler's next
one (removing it would end the scheduler: BullMQ refuses it too).
]]
local rcall = redis.call
local base, id = ARGV[1], ARGV[2]
local jobKey = base .. id
if notAJob(id) or rcall('EXISTS', jobKey) == 0 then return -1 end
if rcall('EXISTS', jobKey .. ':lock') == 1 then return -7 end
local rjk = redis.pcall('HGET', jobKey, 'rjk')
if type(rjk) == 'string' and typeOf(KEYS[12]) == 'zset' then
  local millis = rcall('ZSCORE', KEYS[12], rjk)
  if millis and id == 'repeat:' .. rjk .. ':' .. millis then return -8 end
end
local prev = 'unknown'
local zsets = {{KEYS[5], 'completed'}, {KEYS[6], 'failed'}, {KEYS[4], 'delayed'},
               {KEYS[3], 'prioritized'}, {KEYS[7], 'waiting-children'}}
for _, z in ipairs(zsets) do
  if rcall('ZREM', z[1], id) == 1 then prev = z[2] end
end
if prev == 'unknown' then
  if rcall('LREM', KEYS[2], 0, id) > 0 then prev = 'active'
  elseif rcall('LREM', KEYS[1], 0, id) > 0 then prev = 'waiting'
  elseif rcall('LREM', KEYS[8], 0, id) > 0 then prev = 'paused' end
end
rcall('SREM', KEYS[11], id)
local deid = rcall('HGET', jobKey, 'deid')
if deid and rcall('GET', base .. 'de:' .. deid) == id then rcall('DEL', base .. 'de:' .. deid, base .. 'dn:' .. deid) end
detachFromParent(jobKey, base)  -- _parent.lua: a flow's parent stops waiting for it
rcall('DEL', jobKey, jobKey .. ':logs', jobKey .. ':dependencies', jobKey .. ':processed',
      jobKey .. ':failed', jobKey .. ':unsuccessful')
local maxEvents = rcall('HGET', KEYS[10], 'opts.maxLenEvents') or 10000
rcall('XADD', KEYS[9], 'MAXLEN', '~', maxEvents, '*', 'event', 'removed', 'jobId', id, 'prev', prev)
return 1
