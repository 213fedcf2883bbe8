--[[ _dedup: BullMQ's deduplication, put by scripts.py in front of the scripts that call
deduplicate (add_job) or releaseAndRequeue (move_to_finished); not a script of its own.

deduplicate(de, did, base, jobId, KEYS, maxEvents, add): `de` is the add's opts.de table, `did`
its id, KEYS add_job's (KEYS[4] delayed, KEYS[8] events), `add` the add's name, data and opts
(stored in `dn:<did>` with `jid` = jobId). Returns the id of the job holding the
slot `de:<did>` when this add must not be stored, or nil when it must (the slot then names
jobId). Same rules as BullMQ 6.7.0's deduplicateJob: a slot whose job is gone and that has no
TTL is stale and taken over; keepLastIfActive stores the add in `dn:<did>` (PERSISTing the
slot) while the holder is active; replace removes a still-delayed holder; extend renews the
TTL; reschedule (without replace) moves a still-delayed holder to the add's delay, from the
add's timestamp. Events: `deduplicated {jobId, deduplicationId, deduplicatedJobId}`, `removed`.

requeueBlocked(base, did, keys): a WRONGTYPE error reply when `dn:<did>` holds a kept add and
one of `keys` (wait, prioritized, delayed, pc, marker, id) has the wrong type for re-adding it,
else nil; checked before the finishing job is touched, so a refusal changes nothing.
releaseAndRequeue(k, base, id, did, now, idKey, maxEvents): what BullMQ 6.7.0's moveToFinished
does for a finished job `id` carrying deduplication id `did`, in the same script as the finish
(a crash can never release the slot and lose the kept add): the slot `de:<did>` is deleted when
it still names `id` and has no TTL (removeDeduplicationKeyIfNeededOnFinalization), then the
add kept in `dn:<did>` by keepLastIfActive is re-added (requeueDeduplicatedJob): the id it was
given (`jid`), the counter INCRed as BullMQ does, the slot then names it (TTL `de.ttl` unless
keepLastIfActive), stored and queued like any add (waiting, prioritized or delayed; `added`
and `waiting`/`delayed` events). A `dn:` that is not a hash or whose opts are not JSON was not
written by an add and is left as it is. A kept add's parent fields (`pk`, `pd`, `pdk`) are not
carried. `k`: storeAndEnqueue's keys table.
]]
local function claimSlot(dkey, jobId, de)
  local ttl = tonumber(de['ttl'])
  if not de['keepLastIfActive'] and ttl and ttl > 0 then
    redis.call('SET', dkey, jobId, 'PX', ttl)
  else
    redis.call('SET', dkey, jobId)
  end
end

local function deduplicate(de, did, base, jobId, KEYS, maxEvents, add)
  local rcall = redis.call
  local dkey, nkey, ttl = base .. 'de:' .. did, base .. 'dn:' .. did, tonumber(de['ttl']) or 0
  local function event(holder, dropped)
    rcall('XADD', KEYS[8], 'MAXLEN', '~', maxEvents, '*', 'event', 'deduplicated', 'jobId', holder,
          'deduplicationId', did, 'deduplicatedJobId', dropped)
  end
  local function stale(holder)  -- the holder is gone and the slot would never expire
    if holder and rcall('PTTL', dkey) == -1 and rcall('EXISTS', base .. holder) == 0 then
      rcall('DEL', dkey, nkey)
      claimSlot(dkey, jobId, de)
      return true
    end
    return false
  end
  local function keepNext(holder)  -- keepLastIfActive: remember this add until the holder finishes
    if not de['keepLastIfActive'] or not holder or not rcall('LPOS', base .. 'active', holder) then return false end
    rcall('DEL', nkey)
    rcall('HSET', nkey, 'name', add.name, 'data', add.data, 'opts', add.opts, 'jid', jobId)
    rcall('PERSIST', dkey)
    event(holder, jobId)
    return true
  end
  local holder = rcall('GET', dkey)
  if de['replace'] then
    if not holder then claimSlot(dkey, jobId, de); return nil end
    if rcall('ZREM', KEYS[4], holder) > 0 then
      local hk = base .. holder
      rcall('DEL', hk, hk .. ':logs', hk .. ':dependencies', hk .. ':processed', hk .. ':failed', hk .. ':unsuccessful')
      rcall('XADD', KEYS[8], '*', 'event', 'removed', 'jobId', holder, 'prev', 'delayed')
      event(jobId, holder)
      rcall('DEL', nkey)
      if not de['keepLastIfActive'] and not de['extend'] and ttl > 0 then
        rcall('SET', dkey, jobId, 'KEEPTTL')
      else
        claimSlot(dkey, jobId, de)
      end
      return nil
    end
    if stale(holder) then return nil end
    keepNext(holder)
    return holder
  end
  if ttl > 0 and de['extend'] then
    if not holder then claimSlot(dkey, jobId, de); return nil end
    if stale(holder) then return nil end
    if keepNext(holder) then return holder end
    claimSlot(dkey, holder, de)
    event(holder, jobId)
    return holder
  end
  if ttl > 0 and not de['keepLastIfActive'] then
    if rcall('SET', dkey, jobId, 'PX', ttl, 'NX') then return nil end
  elseif rcall('SET', dkey, jobId, 'NX') then
    return nil
  end
  holder = rcall('GET', dkey)
  if stale(holder) then return nil end
  if keepNext(holder) then return holder end
  event(holder, jobId)
  return holder
end

local function requeueBlocked(base, did, keys)
  if typeOf(base .. 'dn:' .. did) ~= 'hash' then return nil end
  return wrongType(keys, {'list', 'zset', 'zset', 'string', 'zset', 'string'})
end

local function releaseAndRequeue(k, base, id, did, now, idKey, maxEvents)
  local rcall = redis.call
  local dkey, nkey = base .. 'de:' .. did, base .. 'dn:' .. did
  local pttl = redis.pcall('PTTL', dkey)
  if pttl == 0 or (pttl == -1 and redis.pcall('GET', dkey) == id) then rcall('DEL', dkey) end
  if typeOf(nkey) ~= 'hash' then return end
  local kept = rcall('HMGET', nkey, 'name', 'data', 'opts', 'rjk', 'jid')
  local ok, opts = pcall(cjson.decode, kept[3] or '')
  if not ok or type(opts) ~= 'table' then return end
  local counter = rcall('INCR', idKey)
  local jobId = kept[5] or tostring(counter)
  local de = type(opts['de']) == 'table' and opts['de'] or {}
  claimSlot(dkey, jobId, de)
  local delay, prio = tonumber(opts['delay']) or 0, tonumber(opts['priority']) or 0
  storeAndEnqueue(k, base, jobId, kept[1] or '', kept[2] or '{}', kept[3], now, delay, prio, opts['lifo'] == true,
                  de['id'] and tostring(de['id']) or nil, maxEvents)
  if kept[4] then rcall('HSET', base .. jobId, 'rjk', kept[4]) end
  rcall('DEL', nkey)
end
