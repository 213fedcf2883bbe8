--[[ add_flow: add whole flows (trees of jobs, in any queues) at once, as BullMQ 6.7.0's
FlowProducer does in one MULTI: each node as its add script would (addParentJob for a node
with children, else standard / prioritized / delayed), then each parent whose dependencies
ended up empty (every child already existed, completed) leaves waiting-children.

KEYS[1] the first node's job key (routes the call on Redis Cluster; every queue of a flow must
        share its hash slot, as BullMQ requires)
ARGV: twelve values per node, parents before their children:
  base (prefix:queue:), id, name, data JSON, opts JSON, timestamp ms, delay ms, priority,
  '1' for lifo, parent key ('' for none), parent JSON ({id, queueKey[, fpof|cpof|idof|rdof]}
  as BullMQ stores it on a child, '' for none), '1' when the node has children
Per node, as BullMQ: the queue's `id` counter is INCRed; the hash gets name, data, opts,
timestamp, delay, priority (+ parentKey, parent); a parent goes to waiting-children (score =
timestamp, event `waiting-children`); a child's full key joins its parent's `:dependencies`.
A node whose id exists already is not written (event `duplicated`): as a child it is linked
to its new parent (a completed one's return value goes straight to `:processed`), unless it
belongs to another existing parent (BullMQ's -7: not linked, and that parent is not released
by this call).
Returns one value per node: its id, or -7 (see above). -5 (nothing written): a node names a
parent that neither exists nor is added by this call.
Error: a WRONGTYPE reply naming the first key of the wrong type (nothing written).
]]
local rcall = redis.call
local N = 12
-- a parent outside this call must exist (BullMQ's -5), checked before anything is written
local added = {}
for i = 1, #ARGV, N do added[ARGV[i] .. ARGV[i + 1]] = true end
for i = 1, #ARGV, N do
  local parentKey = ARGV[i + 9]
  if parentKey ~= '' and not added[parentKey] and rcall('EXISTS', parentKey) == 0 then return -5 end
end

-- every key this call may write, type-checked before the first write
local SUFFIXES = {'id', 'wait', 'prioritized', 'delayed', 'waiting-children', 'completed', 'pc', 'meta', 'marker',
                  'events', 'active'}
local TYPES = {'string', 'list', 'zset', 'zset', 'zset', 'zset', 'string', 'hash', 'zset', 'stream', 'list'}
local checks, types, seen = {}, {}, {}
local function check(key, kind)
  if not seen[key] then
    seen[key] = true
    checks[#checks + 1] = key
    types[#types + 1] = kind
  end
end
for i = 1, #ARGV, N do
  local base, parentKey = ARGV[i], ARGV[i + 9]
  for j, s in ipairs(SUFFIXES) do check(base .. s, TYPES[j]) end
  check(base .. ARGV[i + 1], 'hash')
  if parentKey ~= '' then
    check(parentKey, 'hash')
    check(parentKey .. ':dependencies', 'set')
    check(parentKey .. ':processed', 'hash')
    local qk = cjson.decode(ARGV[i + 10])['queueKey'] .. ':'  -- the parent's queue (released below)
    for j, s in ipairs(SUFFIXES) do check(qk .. s, TYPES[j]) end
  end
end
local bad = wrongType(checks, types)
if bad then return bad end

local maxEventsOfBase = {}
local function maxEventsFor(base)
  if not maxEventsOfBase[base] then
    local value = rcall('HGET', base .. 'meta', 'opts.maxLenEvents')
    if not value then
      value = 10000
      rcall('HSET', base .. 'meta', 'opts.maxLenEvents', value)
    end
    maxEventsOfBase[base] = maxEventsFrom(value)
  end
  return maxEventsOfBase[base]
end

local results, parents, order, detached = {}, {}, {}, {}
for i = 1, #ARGV, N do
  local base, jobId, name, data, opts = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local ts, delay, prio = tonumber(ARGV[i + 5]), tonumber(ARGV[i + 6]), tonumber(ARGV[i + 7])
  local parentKey, parentData, hasChildren = ARGV[i + 9], ARGV[i + 10], ARGV[i + 11] == '1'
  local jobKey = base .. jobId
  local maxEvents = maxEventsFor(base)
  rcall('INCR', base .. 'id')
  if parentKey ~= '' and not parents[parentKey] then
    local p = cjson.decode(parentData)
    parents[parentKey] = {qk = p['queueKey'], id = p['id']}
    order[#order + 1] = parentKey
  end
  local deps = parentKey ~= '' and parentKey .. ':dependencies'
  if rcall('EXISTS', jobKey) == 1 then
    -- BullMQ's handleDuplicatedJob with deferParentRelease
    local existing = rcall('HGET', jobKey, 'parentKey')
    if parentKey ~= '' and existing and existing ~= parentKey and rcall('EXISTS', existing) == 1 then
      detached[parentKey] = true
      results[#results + 1] = -7
    else
      if parentKey ~= '' then
        if rcall('ZSCORE', base .. 'completed', jobId) then
          rcall('HSET', parentKey .. ':processed', jobKey, rcall('HGET', jobKey, 'returnvalue') or 'null')
        else
          rcall('SADD', deps, jobKey)
        end
        rcall('HSET', jobKey, 'parentKey', parentKey, 'parent', parentData)
      end
      rcall('XADD', base .. 'events', 'MAXLEN', '~', maxEvents, '*', 'event', 'duplicated', 'jobId', jobId)
      results[#results + 1] = jobId
    end
  else
    if hasChildren then
      rcall('HSET', jobKey, 'name', name, 'data', data, 'opts', opts, 'timestamp', ts, 'delay', delay,
            'priority', prio)
      rcall('XADD', base .. 'events', 'MAXLEN', '~', maxEvents, '*', 'event', 'added', 'jobId', jobId, 'name', name)
      rcall('ZADD', base .. 'waiting-children', ts, jobId)
      rcall('XADD', base .. 'events', 'MAXLEN', '~', maxEvents, '*', 'event', 'waiting-children', 'jobId', jobId)
    else
      local k = {wait = base .. 'wait', prioritized = base .. 'prioritized', delayed = base .. 'delayed',
                 pc = base .. 'pc', meta = base .. 'meta', marker = base .. 'marker', events = base .. 'events',
                 active = base .. 'active'}
      storeAndEnqueue(k, base, jobId, name, data, opts, ts, delay, prio, ARGV[i + 8] == '1', nil, maxEvents)
    end
    if parentKey ~= '' then
      rcall('HSET', jobKey, 'parentKey', parentKey, 'parent', parentData)
      rcall('SADD', deps, jobKey)
    end
    results[#results + 1] = jobId
  end
end

-- BullMQ's releaseParentIfNoPendingDependencies, once the whole tree is in
local now = tonumber(ARGV[6])
for _, parentKey in ipairs(order) do
  local p = parents[parentKey]
  if not detached[parentKey] and rcall('SCARD', parentKey .. ':dependencies') == 0 then
    releaseParent(p.qk, parentKey, p.id, now)
  end
end
return results
