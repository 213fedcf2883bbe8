--[[ _guards: helpers scripts.py puts in front of every script; not a script of its own.

Other tools can write any key with any type and any hash field with any value. These let a
script refuse such keys before it changes anything, or skip a bad field, instead of
failing half-way through with some writes done.
]]

-- Per-queue key names that are never jobs, and a job's sub-key suffixes (keys.not_a_job).
local NOT_JOBS = ' meta meta-paused id events marker limiter pc stalled-check stalled repeat delay priority metrics de dn ' ..
                 'wait paused active prioritized delayed waiting-children completed failed '
local SUBKEYS = ' lock logs dependencies processed failed unsuccessful '

-- True when `<base><id>` is one of BullMQ's bookkeeping keys (meta, repeat:<scheduler>,
-- de:<id>, metrics:*, <id>:lock ...) rather than a job: such an id found in a state list or
-- set is never treated as a job, and its key is never written. Mirrors keys.not_a_job.
local function notAJob(id)
  if not string.find(id, ':', 1, true) then  -- most ids: one part, no table to build
    return string.find(NOT_JOBS, ' ' .. id .. ' ', 1, true) ~= nil
  end
  local parts = {}
  for part in string.gmatch(id .. ':', '([^:]*):') do parts[#parts + 1] = part end
  local head = parts[1]
  if #parts == 1 then return string.find(NOT_JOBS, ' ' .. head .. ' ', 1, true) ~= nil end
  if head == 'metrics' or head == 'de' or head == 'dn' then return true end
  if head == 'repeat' then return not (#parts == 3 and string.match(parts[3], '^%d+$') ~= nil) end
  if string.find(SUBKEYS, ' ' .. parts[#parts] .. ' ', 1, true) then return true end
  return #parts ~= 3
end

-- The type of a key ('none' when it does not exist).
local function typeOf(key)
  return redis.call('TYPE', key)['ok']
end

-- An error reply naming the first of `keys` that exists with a type other than `types[i]`,
-- or nil when every key is absent or of its expected type.
local function wrongType(keys, types)
  for i, want in ipairs(types) do
    local got = typeOf(keys[i])
    if got ~= 'none' and got ~= want then
      return redis.error_reply('WRONGTYPE ' .. keys[i] .. ' is a ' .. got .. ', expected a ' .. want)
    end
  end
  return nil
end

-- A read (or a script's first write) run with pcall: its reply, or nil when it failed, for
-- these commands nearly always a key of the wrong type. Such a read before any write checks
-- its keys for free; on nil the caller answers `wrongType(...) or tryError` (nothing was
-- written yet; tryError keeps any other error, such as OOM, as Redis gave it).
local tryError = nil
local function try(...)
  local reply = redis.pcall(...)
  if type(reply) == 'table' and reply.err then tryError = reply; return nil end
  return reply
end

-- The events stream's length cap from meta's opts.maxLenEvents value (10000 when absent or not a number).
local function maxEventsFrom(value)
  local n = tonumber(value)
  if n and n >= 0 and n < 1e15 then return math.floor(n) end
  return 10000
end

-- The events stream's length cap from the meta hash.
local function maxEventsOf(meta)
  return maxEventsFrom(redis.call('HGET', meta, 'opts.maxLenEvents'))
end

-- Sets `field` to `value` in a flat HGETALL reply (appended when absent, as HSET does).
local function setField(flat, field, value)
  for i = 1, #flat, 2 do
    if flat[i] == field then flat[i + 1] = value; return end
  end
  flat[#flat + 1] = field
  flat[#flat + 1] = value
end

-- HINCRBY by 1, or nil (the field left as it is) when the field does not hold an integer.
local function bump(key, field)
  local n = redis.pcall('HINCRBY', key, field, 1)
  if type(n) == 'number' then return n end
  return nil
end

-- A job's priority field value when it is one BullMQ allows (1 .. 2^21 - 1), else 0 (no priority).
local function priorityFrom(value)
  local p = tonumber(value)
  if p and p >= 1 and p <= 2097151 then return math.floor(p) end
  return 0
end

-- A job's priority (see priorityFrom).
local function priorityOf(jobKey)
  return priorityFrom(redis.pcall('HGET', jobKey, 'priority'))
end

-- Put job `id` back in line by its priority: prioritized (priority * 2^32 + the next pc, as
-- BullMQ scores it) when it has one, else the head of wait.
local function lineUp(jobKey, id, wait, prioritized, pc)
  local prio = priorityOf(jobKey)
  if prio > 0 then
    redis.call('ZADD', prioritized, prio * 4294967296 + redis.call('INCR', pc) % 4294967296, id)
  else
    redis.call('LPUSH', wait, id)
  end
end

-- A job's lock token, or false when the lock is gone or is not a string.
local function lockOf(jobKey)
  local lock = redis.pcall('GET', jobKey .. ':lock')
  if type(lock) == 'string' then return lock end
  return false
end

-- Why `token` does not hold the job's lock: -2 no lock (or not a string), -6 another token; nil when it does.
local function notHeld(jobKey, token)
  local lock = lockOf(jobKey)
  if not lock then return -2 end
  if lock ~= token then return -6 end
  return nil
end

-- A running job its worker gives back (retried later, rate limited): -1 when `jobKey` is not a
-- hash, notHeld's code when the lock is not `token`'s; else nil, its lock released and `id` off the
-- `stalled` set.
local function letGo(jobKey, id, token, stalled)
  if typeOf(jobKey) ~= 'hash' then return -1 end
  local held = notHeld(jobKey, token)
  if held then return held end
  redis.call('DEL', jobKey .. ':lock')
  redis.call('SREM', stalled, id)
  return nil
end

-- A stack trace limit from ARGV: a count >= 0, else the default 10.
local function traceLimitOf(arg)
  local n = tonumber(arg)
  if n and n >= 0 and n < 1e15 then return math.floor(n) end
  return 10
end

-- A job's stack traces (`stored`: its stacktrace field, a JSON array, or false) with `trace`
-- appended ('' appends nothing), keeping the newest `limit`, as JSON. A field that is not a
-- JSON array restarts.
local function appendTrace(stored, trace, limit)
  local ok, traces = pcall(cjson.decode, stored or '[]')
  if not ok or type(traces) ~= 'table' then traces = {} end
  if trace ~= '' then traces[#traces + 1] = trace end
  while #traces > limit do table.remove(traces, 1) end
  if #traces == 0 then return '[]' end
  local encoded, out = pcall(cjson.encode, traces)
  if encoded then return out end
  return trace ~= '' and cjson.encode({trace}) or '[]'
end

-- BullMQ's getRateLimitTTL: the limiter's PTTL ms when `max` is set, the counter has reached
-- it and it has a TTL; else 0 (a counter past max with PTTL 0 is deleted). A counter that is
-- not a number counts as 0.
local function rateLimitTTL(max, limiterKey)
  if max and max <= (tonumber(redis.pcall('GET', limiterKey)) or 0) then
    local pttl = redis.call('PTTL', limiterKey)
    if pttl == 0 then redis.call('DEL', limiterKey) end
    if pttl > 0 then return pttl end
  end
  return 0
end
