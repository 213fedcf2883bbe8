--[[ move_to_finished: active -> completed or failed (final), checked against the lock token.

KEYS[1] active list   KEYS[2] target zset (completed or failed)   KEYS[3] stalled set
KEYS[4] events stream KEYS[5] meta hash
ARGV[1] base   ARGV[2] job id   ARGV[3] token   ARGV[4] now ms   ARGV[5] 'completed' | 'failed'
ARGV[6] return value JSON (completed) or failed reason text (failed)
ARGV[7] stack trace to append ('' for none)   ARGV[8] how many stack traces to keep
ARGV[9] keep count (-1 keep all, 0 delete the job now, N keep the newest N in the target set)
ARGV[10] keep age in seconds (0 = no age limit)   ARGV[11] attempts allowed (opts.attempts)
Returns attempts made (>= 1), or -1 job missing, -2 lock missing, -6 lock held by another
token, -3 job not in active.
]]
local rcall = redis.call
local base, id, now = ARGV[1], ARGV[2], tonumber(ARGV[4])
local jobKey = base .. id
if rcall('EXISTS', jobKey) == 0 then return -1 end
local lock = rcall('GET', jobKey .. ':lock')
if not lock then return -2 end
if lock ~= ARGV[3] then return -6 end
rcall('DEL', jobKey .. ':lock')
rcall('SREM', KEYS[3], id)
if rcall('LREM', KEYS[1], -1, id) == 0 then return -3 end
local atm = rcall('HINCRBY', jobKey, 'atm', 1)
local completed = ARGV[5] == 'completed'
local field = completed and 'returnvalue' or 'failedReason'

-- Release this job's deduplication slot when it still holds it and it has no TTL.
local deid = rcall('HGET', jobKey, 'deid')
if deid then
  local dkey = base .. 'de:' .. deid
  if rcall('GET', dkey) == id and rcall('PTTL', dkey) == -1 then rcall('DEL', dkey) end
end

local function deleteJob(jid)
  local k = base .. jid
  rcall('DEL', k, k .. ':logs', k .. ':dependencies', k .. ':processed', k .. ':failed', k .. ':unsuccessful')
end

local keep, age = tonumber(ARGV[9]), tonumber(ARGV[10])
if keep == 0 then
  deleteJob(id)
else
  if ARGV[7] ~= '' then
    local ok, traces = pcall(cjson.decode, rcall('HGET', jobKey, 'stacktrace') or '[]')
    if not ok or type(traces) ~= 'table' then traces = {} end
    traces[#traces + 1] = ARGV[7]
    local limit = tonumber(ARGV[8])
    while #traces > limit do table.remove(traces, 1) end
    rcall('HSET', jobKey, 'stacktrace', cjson.encode(traces))
  end
  rcall('HSET', jobKey, field, ARGV[6], 'finishedOn', now)
  if not completed then rcall('HDEL', jobKey, 'defa') end
  rcall('ZADD', KEYS[2], now, id)
  if age > 0 then
    local old = rcall('ZRANGEBYSCORE', KEYS[2], 0, now - age * 1000, 'LIMIT', 0, 1000)
    for _, jid in ipairs(old) do deleteJob(jid); rcall('ZREM', KEYS[2], jid) end
  end
  if keep > 0 then
    local extra = rcall('ZCARD', KEYS[2]) - keep
    if extra > 0 then
      local old = rcall('ZRANGE', KEYS[2], 0, math.min(extra, 1000) - 1)
      for _, jid in ipairs(old) do deleteJob(jid); rcall('ZREM', KEYS[2], jid) end
    end
  end
end

local maxEvents = rcall('HGET', KEYS[5], 'opts.maxLenEvents') or 10000
rcall('XADD', KEYS[4], 'MAXLEN', '~', maxEvents, '*', 'event', ARGV[5], 'jobId', id, field, ARGV[6],
      'prev', 'active')
if not completed and atm >= tonumber(ARGV[11]) then
  rcall('XADD', KEYS[4], 'MAXLEN', '~', maxEvents, '*', 'event', 'retries-exhausted', 'jobId', id,
        'attemptsMade', atm)
end
return atm
