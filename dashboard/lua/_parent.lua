--[[ _parent: a flow's parent bookkeeping, as BullMQ 6.7.0 keeps it; a helper scripts.py puts in
front of move_to_finished and add_flow, not a script of its own.

A child's hash holds `parentKey` (the parent's full key) and `parent` (JSON: id, queueKey
`<prefix>:<queue>`, and the child's failure policy fpof / cpof / idof / rdof). The parent
holds `:dependencies` (set of unfinished children's full keys), `:processed` (hash: child key
-> return value JSON), `:failed` (hash: child key -> failed reason, idof and cpof) and
`:unsuccessful` (zset: child key @ ms, fpof). Every parent-side key is type-checked before the
first write: a parent whose keys another tool spoiled (or that is one of BullMQ's bookkeeping
keys) is left exactly as it is, and the child's own finish goes on.

settleParent(jobKey, id, completed, value, removed, now, parentKey, rawParent): called by a
finish once the child left active. Completed: record the return value, drop the dependency,
release the parent when none is left. Failed (final): the child's policy (none: the parent
waits on; fpof: the parent fails on its next run; cpof: it runs now; idof: the failure is
recorded and the dependency dropped; rdof: just dropped). `removed` (removeOnComplete/Fail
deleted the child): a dependency still held is dropped as BullMQ's removeParentDependencyKey does.
childrenGate(jobKey, id, failedKey): the reason a job with unfinished (BullMQ -4) or failed fpof
children (-9) cannot complete, or nil (also when the failed zset has the wrong type).
releaseParent(qk, parentKey, parentId, now): waiting-children -> wait / prioritized / delayed.
childBackToParent(jobKey, prevState): a retried child is pending again (reprocess_jobs).
detachFromParent(jobKey, base): a deleted child is no longer waited for (remove_job, delete_jobs).
]]

-- BullMQ's isQueuePausedOrMaxed for the queue whose keys start with `qk .. ':'`.
local function parentPausedOrMaxed(qk)
  local flags = redis.call('HMGET', qk .. ':meta', 'paused', 'concurrency')
  if flags[1] then return true end
  local cap = tonumber(flags[2])
  return cap ~= nil and redis.call('LLEN', qk .. ':active') >= cap
end

-- BullMQ's moveParentToWait: delayed (its `delay` from now), prioritized or the front of wait.
local function parentToWait(qk, parentKey, parentId, now)
  local rcall = redis.call
  local attrs = rcall('HMGET', parentKey, 'priority', 'delay')
  local prio, delay = priorityFrom(attrs[1]), tonumber(attrs[2]) or 0
  if delay > 0 and delay < 2^47 then
    local due = now + math.floor(delay)
    rcall('ZADD', qk .. ':delayed', due * 4096, parentId)
    rcall('XADD', qk .. ':events', '*', 'event', 'delayed', 'jobId', parentId, 'delay', due)
    local first = rcall('ZRANGE', qk .. ':delayed', 0, 0, 'WITHSCORES')
    rcall('ZADD', qk .. ':marker', math.floor(tonumber(first[2]) / 4096), '1')
    return
  end
  if prio > 0 then
    local pc = rcall('INCR', qk .. ':pc')
    rcall('ZADD', qk .. ':prioritized', prio * 4294967296 + pc % 4294967296, parentId)
  else
    rcall('RPUSH', qk .. ':wait', parentId)
  end
  if not parentPausedOrMaxed(qk) then rcall('ZADD', qk .. ':marker', 0, '0') end
  rcall('XADD', qk .. ':events', '*', 'event', 'waiting', 'jobId', parentId, 'prev', 'waiting-children')
end

-- BullMQ's moveParentToWaitIfNeeded: only a parent that exists and still waits for children.
local function releaseParent(qk, parentKey, parentId, now)
  if redis.call('EXISTS', parentKey) == 1 and redis.call('ZREM', qk .. ':waiting-children', parentId) == 1 then
    parentToWait(qk, parentKey, parentId, now)
  end
end

-- The parent's keys, when every one has its type (or is absent) and the parent can be a job.
local PARENT_TYPES = {'hash', 'set', 'hash', 'hash', 'zset', 'zset', 'list', 'zset', 'zset', 'zset', 'hash',
                      'stream', 'string', 'list'}
local function parentKeysOk(qk, parentKey, parentId)
  if notAJob(parentId) then return false end
  local keys = {parentKey, parentKey .. ':dependencies', parentKey .. ':processed', parentKey .. ':failed',
                parentKey .. ':unsuccessful'}
  for _, s in ipairs({'waiting-children', 'wait', 'prioritized', 'delayed', 'marker', 'meta', 'events', 'pc',
                      'active'}) do keys[#keys + 1] = qk .. ':' .. s end
  return wrongType(keys, PARENT_TYPES) == nil
end

-- {key, qk, id, flags} of a child's parent from its parentKey and parent fields, or nil.
local function parentOf(parentKey, rawParent)
  if rawParent then
    local ok, p = pcall(cjson.decode, rawParent)
    if ok and type(p) == 'table' and type(p['id']) == 'string' and type(p['queueKey']) == 'string' then
      return {key = parentKey or (p['queueKey'] .. ':' .. p['id']), qk = p['queueKey'], id = p['id'], flags = p}
    end
  end
  if type(parentKey) ~= 'string' then return nil end
  local id = string.match(parentKey, '.*:(.*)')
  if not id or id == '' then return nil end
  return {key = parentKey, qk = string.sub(parentKey, 1, #parentKey - #id - 1), id = id, flags = {}}
end

local function settleParent(jobKey, id, completed, value, removed, now, parentKey, rawParent)
  if not parentKey and not rawParent then return end
  local p = parentOf(parentKey, rawParent)
  if not p or not parentKeysOk(p.qk, p.key, p.id) then return end
  local rcall = redis.call
  local deps = p.key .. ':dependencies'
  if completed then
    if rcall('SREM', deps, jobKey) == 1 then
      rcall('HSET', p.key .. ':processed', jobKey, value)
      if rcall('SCARD', deps) == 0 then releaseParent(p.qk, p.key, p.id, now) end
    end
  elseif p.flags['fpof'] then
    if rcall('SREM', deps, jobKey) == 1 then
      rcall('ZADD', p.key .. ':unsuccessful', now, jobKey)
      if rcall('EXISTS', p.key) == 1 then
        local reason = 'child ' .. jobKey .. ' failed'
        local from = rcall('ZSCORE', p.qk .. ':waiting-children', p.id) and 'waiting-children'
        if not from and rcall('ZSCORE', p.qk .. ':delayed', p.id) then
          from = 'delayed'
          rcall('HSET', p.key, 'delay', 0)
        end
        if from then
          rcall('ZREM', p.qk .. ':' .. from, p.id)
          rcall('HSET', p.key, 'defa', reason)
          parentToWait(p.qk, p.key, p.id, now)
        elseif not rcall('ZSCORE', p.qk .. ':failed', p.id) then
          rcall('HSET', p.key, 'defa', reason)
        end
      end
    end
  elseif p.flags['cpof'] then
    if rcall('SREM', deps, jobKey) == 1 then
      rcall('HSET', p.key .. ':failed', jobKey, value)
      releaseParent(p.qk, p.key, p.id, now)
    end
  elseif p.flags['idof'] or p.flags['rdof'] then
    if rcall('SREM', deps, jobKey) == 1 then
      if rcall('SCARD', deps) == 0 then releaseParent(p.qk, p.key, p.id, now) end
      if p.flags['idof'] then rcall('HSET', p.key .. ':failed', jobKey, value) end
    end
  end
  -- removeOnComplete/Fail deleted the child: a dependency it still holds goes (the last one
  -- moves the parent to the front of wait, as BullMQ's removeParentDependencyKey does)
  if removed and rcall('SREM', deps, jobKey) == 1 and rcall('SCARD', deps) == 0
     and rcall('ZREM', p.qk .. ':waiting-children', p.id) == 1 then
    rcall('RPUSH', p.qk .. ':wait', p.id)
    if not parentPausedOrMaxed(p.qk) then rcall('ZADD', p.qk .. ':marker', 0, '0') end
    rcall('XADD', p.qk .. ':events', '*', 'event', 'waiting', 'jobId', p.id, 'prev', 'waiting-children')
  end
end

local function childrenGate(jobKey, id, failedKey)
  if redis.call('EXISTS', jobKey .. ':dependencies', jobKey .. ':unsuccessful') == 0 then return nil end
  if wrongType({failedKey}, {'zset'}) then return nil end  -- it could not be failed without a half-done write
  if (tonumber(redis.pcall('SCARD', jobKey .. ':dependencies')) or 0) > 0 then
    return 'Job ' .. id .. ' has pending dependencies. moveToFinished'
  end
  if (tonumber(redis.pcall('ZCARD', jobKey .. ':unsuccessful')) or 0) > 0 then
    return 'Cannot complete job ' .. id .. ' because it has at least one failed child. moveToFinished'
  end
  return nil
end

-- The parent a job's `parentKey` names, when its keys are sound and it exists; else nil.
local function existingParent(jobKey)
  local raw = redis.pcall('HGET', jobKey, 'parentKey')
  local p = type(raw) == 'string' and parentOf(raw, nil)
  if not p or not parentKeysOk(p.qk, p.key, p.id) or redis.call('EXISTS', p.key) == 0 then return nil end
  return p
end

-- BullMQ's moveChildBackToParentDependencies: a retried child (from `prevState`, 'failed' or
-- 'completed') is pending again for its parent when the parent had filed it as done; a parent
-- that already left waiting-children stays where it is.
local function childBackToParent(jobKey, prevState)
  local p = existingParent(jobKey)
  if not p then return end
  local rcall = redis.call
  local filed
  if prevState == 'failed' then
    filed = rcall('ZREM', p.key .. ':unsuccessful', jobKey) == 1 or rcall('HDEL', p.key .. ':failed', jobKey) == 1
  else
    filed = rcall('HDEL', p.key .. ':processed', jobKey) == 1
  end
  if filed then rcall('SADD', p.key .. ':dependencies', jobKey) end
end

-- BullMQ's removeParentDependencyKey(hard) for a job about to be deleted (remove, clean, drain):
-- its parent stops waiting for it; when it was the last one the parent leaves waiting-children,
-- deleted with it when the parent is in the same queue (`base`) as BullMQ does, else to wait.
local function detachFromParent(jobKey, base)
  local p = existingParent(jobKey)
  if not p then return end
  local rcall = redis.call
  local deps = p.key .. ':dependencies'
  if rcall('SREM', deps, jobKey) == 0 or rcall('SCARD', deps) > 0 then return end
  if rcall('ZREM', p.qk .. ':waiting-children', p.id) == 0 then return end
  if p.qk .. ':' == base then
    detachFromParent(p.key, base)
    rcall('DEL', p.key, p.key .. ':logs', p.key .. ':dependencies', p.key .. ':processed', p.key .. ':failed',
          p.key .. ':unsuccessful')
  else
    rcall('RPUSH', p.qk .. ':wait', p.id)
    if not parentPausedOrMaxed(p.qk) then rcall('ZADD', p.qk .. ':marker', 0, '0') end
  end
end
