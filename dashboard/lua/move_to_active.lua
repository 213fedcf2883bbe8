--[[ move_to_active: promote due delayed jobs, then take up to N ready jobs and lock them.

KEYS[1] wait  list   KEYS[2] active  list   KEYS[3] prioritized zset   KEYS[4] delayed zset
KEYS[5] pc    string KEYS[6] meta    hash   KEYS[7] marker      zset   KEYS[8] events  stream
KEYS[9] limiter string
ARGV[1] base   ARGV[2] token prefix (each job's token is prefix .. ':' .. n)
ARGV[3] lock duration ms   ARGV[4] now ms   ARGV[5] most jobs to take   ARGV[6] worker name or ''
ARGV[7] the worker limiter's max ('' for none)   ARGV[8] its duration ms ('' for none)
Rate limit as BullMQ's moveToActive: max is meta `max` else the worker's, duration the
worker's else meta `duration`; each job taken (but deferred failures) INCRs `limiter`, which
gets PEXPIRE duration when it becomes 1; while `limiter` >= max and has a TTL, nothing is taken.
Returns {taken, next_due, dropped, limited}: taken is a flat list id, token, {hash fields...} per job
(wait first, then prioritized, as BullMQ serves them); next_due is the due ms of the earliest
delayed job, or -1 when nothing is delayed; dropped lists {id, type} for each id taken off the
queue because its job key holds another type than a hash, or is one of BullMQ's bookkeeping
keys (type 'bookkeeping': such a key is never written; ids whose hash is gone are dropped
silently); limited is the limiter's PTTL ms when the rate limit stopped the fetch, else 0.
Error: a WRONGTYPE reply naming the first of KEYS that holds the wrong type (nothing changed);
a key this call does not touch is not checked (pc without due delayed jobs, limiter without a
rate limit; prioritized is checked when wait runs empty: then jobs already taken are returned
and the next call answers the error).
]]
local rcall = redis.call
local function refuse()
  return wrongType(KEYS, {'list', 'list', 'zset', 'zset', 'string', 'hash', 'zset', 'stream', 'string'}) or tryError
end
local base, now = ARGV[1], tonumber(ARGV[4])
-- Checks before the first write, at the fewest commands: meta and delayed by these reads (pcall),
-- wait and active by the first RPOPLPUSH (when it fails nothing was written), events and marker
-- (and with a rate limit wait, active, limiter) by TYPE; everything when due jobs are promoted.
local flags = try('HMGET', KEYS[6], 'paused', 'concurrency', 'max', 'duration', 'opts.maxLenEvents')
local due = flags and try('ZRANGEBYSCORE', KEYS[4], 0, (now + 1) * 4096 - 1, 'LIMIT', 0, 1000)
if not due then return refuse() end
local paused, maxEvents = flags[1], maxEventsFrom(flags[5])
local maxJobs, duration = tonumber(flags[3] or ARGV[7]), tonumber(ARGV[8] ~= '' and ARGV[8] or flags[4]) or 0
local checked = #due > 0 or maxJobs ~= nil  -- every key checked up front
local bad
if checked then bad = refuse() else bad = wrongType({KEYS[7], KEYS[8]}, {'zset', 'stream'}) and refuse() end
if bad then return bad end

-- Promote delayed jobs that are due, at most 1000 per call (BullMQ does this in every fetch).
for _, id in ipairs(due) do
  rcall('ZREM', KEYS[4], id)
  local prio = priorityOf(base .. id)
  if prio > 0 then
    local pc = rcall('INCR', KEYS[5])
    rcall('ZADD', KEYS[3], prio * 4294967296 + pc % 4294967296, id)
  else
    rcall('LPUSH', KEYS[1], id)
  end
  redis.pcall('HSET', base .. id, 'delay', 0)
  rcall('XADD', KEYS[8], 'MAXLEN', '~', maxEvents, '*', 'event', 'waiting', 'jobId', id, 'prev', 'delayed')
end
if #due > 0 and not paused then rcall('ZADD', KEYS[7], 0, '0') end

local function nextDue()
  local first = rcall('ZRANGE', KEYS[4], 0, 0, 'WITHSCORES')
  if first[2] then return math.floor(tonumber(first[2]) / 4096) end
  return -1
end

local limited = rateLimitTTL(maxJobs, KEYS[9])
if limited > 0 then return {{}, nextDue(), {}, limited} end
local want = tonumber(ARGV[5])
local limit = tonumber(flags[2])
if limit and limit == limit then
  local running = try('LLEN', KEYS[2])
  if not running then return refuse() end
  want = math.min(want, limit - running)
end
if paused or want < 1 then return {{}, nextDue(), {}, 0} end

-- The next id moved from wait (or prioritized) to active, nil when none, or an error reply
-- (only before anything was written).
local moved = false  -- an id was moved: writes were made
local function nextId()
  local id = try('RPOPLPUSH', KEYS[1], KEYS[2])
  if id == nil then return refuse() end  -- wait or active is of the wrong type: the first write failed
  if id then moved = true; return id end
  if not checked then  -- wait is empty: check prioritized (and active) before ZPOPMIN writes
    checked = true
    if wrongType({KEYS[2], KEYS[3]}, {'list', 'zset'}) then
      if moved then return nil end  -- keep what was taken; the next call answers the error
      return refuse()
    end
  end
  local popped = rcall('ZPOPMIN', KEYS[3])
  if not popped[1] then return nil end
  rcall('LPUSH', KEYS[2], popped[1])
  return popped[1]
end

local taken, dropped, n = {}, {}, 0
local stamp = string.format('%.17g', now)  -- processedOn as HSET stores the number now
while n < want do
  if maxJobs then
    limited = rateLimitTTL(maxJobs, KEYS[9])
    if limited > 0 then break end
  end
  local id = nextId()
  if type(id) == 'table' then return id end
  if not id then break end
  local jobKey = base .. id
  local kind, fields = 'bookkeeping', nil  -- 'meta' pushed into wait is no job
  if not notAJob(id) then
    fields = redis.pcall('HGETALL', jobKey)  -- read before the writes below, which it then patches
    kind = fields.err and typeOf(jobKey) or (#fields == 0 and 'none' or 'hash')
  end
  if kind ~= 'hash' then
    rcall('LREM', KEYS[2], 1, id)  -- its hash was deleted or overwritten by another tool: run nothing
    if kind ~= 'none' then dropped[#dropped + 1] = {id, kind} end
  else
    n = n + 1
    if maxJobs and rcall('HEXISTS', jobKey, 'defa') == 0 and redis.pcall('INCR', KEYS[9]) == 1 then
      rcall('PEXPIRE', KEYS[9], math.floor(math.abs(duration)))
    end
    local token = ARGV[2] .. ':' .. n
    rcall('SET', jobKey .. ':lock', token, 'PX', ARGV[3])
    setField(fields, 'processedOn', stamp)
    if ARGV[6] ~= '' then
      rcall('HSET', jobKey, 'processedOn', stamp, 'pb', ARGV[6])
      setField(fields, 'pb', ARGV[6])
    else
      rcall('HSET', jobKey, 'processedOn', stamp)
    end
    local ats = bump(jobKey, 'ats')  -- a count another tool spoiled stays as it is: the worker fails that job
    if ats then setField(fields, 'ats', math.abs(ats) < 2^53 and string.format('%d', ats) or rcall('HGET', jobKey, 'ats')) end
    rcall('XADD', KEYS[8], 'MAXLEN', '~', maxEvents, '*', 'event', 'active', 'jobId', id, 'prev', 'waiting')
    taken[#taken + 1] = id
    taken[#taken + 1] = token
    taken[#taken + 1] = fields
  end
end
if #taken > 0 then
  rcall('ZADD', KEYS[7], 0, '0')
  return {taken, -1, dropped, limited}
end
return {taken, nextDue(), dropped, limited}
