--[[ finish_deduplicated: what BullMQ's moveToFinished does for a finished job that carries a
deduplication id (`deid`), beyond what move_to_finished does (it releases a slot `de:<id>`
that still names the job and has no TTL): re-add the add kept in `dn:<id>` while the job was
active (keepLastIfActive), as BullMQ's requeueDeduplicatedJob does. Sent in the same round
trip right after move_to_finished, for the jobs of that batch that carry a deduplication id.

KEYS[1] wait  KEYS[2] prioritized  KEYS[3] delayed  KEYS[4] pc  KEYS[5] meta  KEYS[6] marker
KEYS[7] events  KEYS[8] active  KEYS[9] id  KEYS[10] completed  KEYS[11] failed
ARGV[1] base   ARGV[2] now ms (the `now` move_to_finished was given)
ARGV[3..] three values per job: id, deduplication id, 'completed' | 'failed'
A job counts as finished by that call only when its lock is gone, it is not in active, and it
is in the target set with score `now` or its hash is gone (removeOnComplete/Fail): a refused
finish changes nothing here. The kept add gets the id it was given (`jid`), the counter is
INCRed as BullMQ does, the slot then names it (TTL `de.ttl` unless keepLastIfActive), and it
is stored and queued like any add (waiting, prioritized or delayed; `added` and
`waiting`/`delayed` events). A kept add's parent fields (`pk`, `pd`, `pdk`) are not carried.
Returns one number per job: 1 a kept add was re-added, 0 nothing to do, -1 not finished.
Error: a WRONGTYPE reply naming the first key of the wrong type (nothing changed).
]]
local rcall = redis.call
local bad = wrongType(KEYS, {'list', 'zset', 'zset', 'string', 'hash', 'zset', 'stream', 'list', 'string',
                             'zset', 'zset'})
if bad then return bad end
local base, now = ARGV[1], tonumber(ARGV[2])
local k = {wait = KEYS[1], prioritized = KEYS[2], delayed = KEYS[3], pc = KEYS[4], meta = KEYS[5],
           marker = KEYS[6], events = KEYS[7], active = KEYS[8]}

local function finished(id, status)
  local jobKey = base .. id
  if rcall('EXISTS', jobKey .. ':lock') == 1 or rcall('LPOS', KEYS[8], id) then return false end
  local target = status == 'completed' and KEYS[10] or KEYS[11]
  return tonumber(rcall('ZSCORE', target, id)) == now or rcall('EXISTS', jobKey) == 0
end

local function requeue(did)
  local nkey = base .. 'dn:' .. did
  if typeOf(nkey) ~= 'hash' then return 0 end
  local kept = rcall('HMGET', nkey, 'name', 'data', 'opts', 'rjk', 'jid')
  local ok, opts = pcall(cjson.decode, kept[3] or '')
  if not ok or type(opts) ~= 'table' then return 0 end  -- not written by an add: left as it is
  local counter = rcall('INCR', KEYS[9])
  local jobId = kept[5] or tostring(counter)
  local de = type(opts['de']) == 'table' and opts['de'] or {}
  claimSlot(base .. 'de:' .. did, jobId, de)
  local delay, prio = tonumber(opts['delay']) or 0, tonumber(opts['priority']) or 0
  storeAndEnqueue(k, base, jobId, kept[1] or '', kept[2] or '{}', kept[3], now, delay, prio, opts['lifo'] == true,
                  de['id'] and tostring(de['id']) or nil, maxEventsOf(KEYS[5]))
  if kept[4] then rcall('HSET', base .. jobId, 'rjk', kept[4]) end
  rcall('DEL', nkey)
  return 1
end

local results = {}
for i = 3, #ARGV, 3 do
  if finished(ARGV[i], ARGV[i + 2]) then results[#results + 1] = requeue(ARGV[i + 1])
  else results[#results + 1] = -1 end
end
return results
