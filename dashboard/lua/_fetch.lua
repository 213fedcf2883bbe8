--[[ _fetch: BullMQ's moveToActive as a function, put in front of move_to_active.lua (which is
only this) and move_to_finished.lua (which fetches the next jobs in the same call, as BullMQ's
moveToFinished with fetchNext does); not a script of its own.

fetchJobs(K, A, eventsChecked, meta): K and A are move_to_active's KEYS and ARGV (see its header);
eventsChecked: the caller has just checked that K[8] is a stream (or absent); meta: the caller's
HMGET of K[6]'s paused, concurrency, max, duration and opts.maxLenEvents, or nil. The reply is
move_to_active's.
]]
local function fetchJobs(K, A, eventsChecked, meta)
  local rcall = redis.call
  local function refuse()
    return wrongType(K, {'list', 'list', 'zset', 'zset', 'string', 'hash', 'zset', 'stream', 'string'}) or tryError
  end
  local base, now = A[1], tonumber(A[4])
  if A[4] == '' then  -- the server's clock: a fetch sent ahead, queued behind a blocking pop (see move_to_active)
    local t = rcall('TIME')
    now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  -- Checks before the first write, at the fewest commands: meta and delayed by these reads (pcall),
  -- wait and active by the first RPOPLPUSH (when it fails nothing was written), events and marker
  -- (and with a rate limit wait, active, limiter) by TYPE; everything when due jobs are promoted.
  local flags = meta or try('HMGET', K[6], 'paused', 'concurrency', 'max', 'duration', 'opts.maxLenEvents')
  local due = flags and try('ZRANGEBYSCORE', K[4], 0, (now + 1) * 4096 - 1, 'LIMIT', 0, 1000)
  if not due then return refuse() end
  local paused, maxEvents = flags[1], maxEventsFrom(flags[5])
  local maxJobs, duration = tonumber(flags[3] or A[7]), tonumber(A[8] ~= '' and A[8] or flags[4]) or 0
  local checked = #due > 0 or maxJobs ~= nil  -- every key checked up front
  local bad
  if checked then
    bad = refuse()
  elseif eventsChecked then
    bad = wrongType({K[7]}, {'zset'}) and refuse()
  else
    bad = wrongType({K[7], K[8]}, {'zset', 'stream'}) and refuse()
  end
  if bad then return bad end

  -- Promote delayed jobs that are due, at most 1000 per call (BullMQ does this in every fetch).
  for _, id in ipairs(due) do
    rcall('ZREM', K[4], id)
    lineUp(base .. id, id, K[1], K[3], K[5])
    redis.pcall('HSET', base .. id, 'delay', 0)
    rcall('XADD', K[8], 'MAXLEN', '~', maxEvents, '*', 'event', 'waiting', 'jobId', id, 'prev', 'delayed')
  end
  if #due > 0 and not paused then rcall('ZADD', K[7], 0, '0') end

  local function nextDue()
    local first = rcall('ZRANGE', K[4], 0, 0, 'WITHSCORES')
    if first[2] then return math.floor(tonumber(first[2]) / 4096) end
    return -1
  end

  local limited = rateLimitTTL(maxJobs, K[9])
  if limited > 0 then return {{}, nextDue(), {}, limited} end
  local want = tonumber(A[5])
  local limit = tonumber(flags[2])
  if limit and limit == limit then
    local running = try('LLEN', K[2])
    if not running then return refuse() end
    want = math.min(want, limit - running)
  end
  if paused or want < 1 then return {{}, nextDue(), {}, 0} end

  -- The next id moved from wait (or prioritized) to active, nil when none, or an error reply
  -- (only before anything was written).
  local moved = false  -- an id was moved: writes were made
  local function nextId()
    local id = try('RPOPLPUSH', K[1], K[2])
    if id == nil then return refuse() end  -- wait or active is of the wrong type: the first write failed
    if id then moved = true; return id end
    if not checked then  -- wait is empty: check prioritized (and active) before ZPOPMIN writes
      checked = true
      if wrongType({K[2], K[3]}, {'list', 'zset'}) then
        if moved then return nil end  -- keep what was taken; the next call answers the error
        return refuse()
      end
    end
    local popped = rcall('ZPOPMIN', K[3])
    if not popped[1] then return nil end
    rcall('LPUSH', K[2], popped[1])
    return popped[1]
  end

  local taken, dropped, n = {}, {}, 0
  local stamp = string.format('%.17g', now)  -- processedOn as HSET stores the number now
  while n < want do
    if maxJobs then
      limited = rateLimitTTL(maxJobs, K[9])
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
      rcall('LREM', K[2], 1, id)  -- its hash was deleted or overwritten by another tool: run nothing
      if kind ~= 'none' then dropped[#dropped + 1] = {id, kind} end
    else
      n = n + 1
      if maxJobs and rcall('HEXISTS', jobKey, 'defa') == 0 and redis.pcall('INCR', K[9]) == 1 then
        rcall('PEXPIRE', K[9], math.floor(math.abs(duration)))
      end
      local token = A[2] .. ':' .. n
      rcall('SET', jobKey .. ':lock', token, 'PX', A[3])
      setField(fields, 'processedOn', stamp)
      if A[6] ~= '' then
        rcall('HSET', jobKey, 'processedOn', stamp, 'pb', A[6])
        setField(fields, 'pb', A[6])
      else
        rcall('HSET', jobKey, 'processedOn', stamp)
      end
      local ats = bump(jobKey, 'ats')  -- a count another tool spoiled stays as it is: the worker fails that job
      if ats then setField(fields, 'ats', math.abs(ats) < 2^53 and string.format('%d', ats) or rcall('HGET', jobKey, 'ats')) end
      rcall('XADD', K[8], 'MAXLEN', '~', maxEvents, '*', 'event', 'active', 'jobId', id, 'prev', 'waiting')
      taken[#taken + 1] = id
      taken[#taken + 1] = token
      taken[#taken + 1] = fields
    end
  end
  if #taken > 0 then
    rcall('ZADD', K[7], 0, '0')
    return {taken, -1, dropped, limited}
  end
  return {taken, nextDue(), dropped, limited}
end
