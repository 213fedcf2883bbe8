--[[ add_job: store new jobs and make each waiting, prioritized or delayed (BullMQ's add scripts,
deduplication included), one job after the other as if each were added by its own call.

KEYS[1] id          string   id counter (INCR on every add, as BullMQ does)
KEYS[2] wait        list     LPUSH (FIFO) or RPUSH (lifo)
KEYS[3] prioritized zset     score priority * 2^32 + pc
KEYS[4] delayed     zset     score due_ms * 4096 + seq
KEYS[5] pc          string   priority counter
KEYS[6] meta        hash     paused, concurrency, opts.maxLenEvents
KEYS[7] marker      zset     "0"@0 = ready, "1"@due = next delayed
KEYS[8] events      stream
KEYS[9] active      list     read for the global concurrency check
ARGV[1] base (prefix:queue:), then nine values per job:
  custom id or '', name, data JSON, opts JSON, timestamp ms, delay ms, priority, '1' for lifo,
  deduplication id ('' for none; its options are opts.de: ttl ms, extend, replace,
  keepLastIfActive, reschedule). The slot is `de:<id>`, a kept add `dn:<id>`, as BullMQ's
  deduplicateJob writes them (a replaced delayed job is removed, `removed` event).
Returns {job id, flag, job id, flag, ...} in the order given: flag 0 added, 1 a job with that
custom id already existed, 2 the add was deduplicated (the id is the job holding the slot).
Nothing is written for flags 1 and 2 but the counter, the events and the deduplication keys.
]]
local rcall = redis.call
local base = ARGV[1]
local maxEvents = rcall('HGET', KEYS[6], 'opts.maxLenEvents')
if not maxEvents then
  maxEvents = 10000
  rcall('HSET', KEYS[6], 'opts.maxLenEvents', maxEvents)
end
local k = {wait = KEYS[2], prioritized = KEYS[3], delayed = KEYS[4], pc = KEYS[5], meta = KEYS[6],
           marker = KEYS[7], events = KEYS[8], active = KEYS[9], once = true}

local function addOne(customId, name, data, opts, ts, delay, prio, lifo, did)
  local counter = rcall('INCR', KEYS[1])
  local jobId = customId ~= '' and customId or tostring(counter)
  if rcall('EXISTS', base .. jobId) == 1 then
    rcall('XADD', KEYS[8], 'MAXLEN', '~', maxEvents, '*', 'event', 'duplicated', 'jobId', jobId)
    return jobId, 1
  end
  if did ~= '' then
    local de = cjson.decode(opts)['de']
    local holder = deduplicate(de, did, base, jobId, KEYS, maxEvents, {name = name, data = data, opts = opts})
    if holder then
      if de['reschedule'] and not de['replace'] and rcall('ZSCORE', KEYS[4], holder) then
        rcall('HSET', base .. holder, 'delay', tonumber(delay))  -- reschedule: the holder takes this add's delay
        delayJob(k, holder, tonumber(ts), tonumber(delay), maxEvents)
      end
      return holder, 2
    end
  end
  storeAndEnqueue(k, base, jobId, name, data, opts, tonumber(ts), tonumber(delay), tonumber(prio),
                  lifo == '1', did ~= '' and did or nil, maxEvents)
  return jobId, 0
end

local out = {}
for i = 2, #ARGV, 9 do
  local jobId, flag = addOne(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5],
                             ARGV[i + 6], ARGV[i + 7], ARGV[i + 8])
  out[#out + 1] = jobId
  out[#out + 1] = flag
end
return out
