--[[ add_job: store a new job and make it waiting, prioritized or delayed (BullMQ's add scripts,
deduplication included).

KEYS[1] id          string   id counter (INCR on every add, as BullMQ does)
KEYS[2] wait        list     LPUSH (FIFO) or RPUSH (lifo)
KEYS[3] prioritized zset     score priority * 2^32 + pc
KEYS[4] delayed     zset     score due_ms * 4096 + seq
KEYS[5] pc          string   priority counter
KEYS[6] meta        hash     paused, concurrency, opts.maxLenEvents
KEYS[7] marker      zset     "0"@0 = ready, "1"@due = next delayed
KEYS[8] events      stream
KEYS[9] active      list     read for the global concurrency check
ARGV[1] base (prefix:queue:)   ARGV[2] custom id or ''   ARGV[3] name
ARGV[4] data JSON   ARGV[5] opts JSON   ARGV[6] timestamp ms   ARGV[7] delay ms
ARGV[8] priority    ARGV[9] '1' for lifo
ARGV[10] deduplication id ('' for none; its options are opts.de: ttl ms, extend, replace,
         keepLastIfActive). The slot is `de:<id>`, a kept add `dn:<id>`, as BullMQ's
         deduplicateJob writes them (a replaced delayed job is removed, `removed` event).
Returns {job id, flag}: flag 0 added, 1 a job with that custom id already existed, 2 the add
was deduplicated (the id is the job holding the slot). Nothing is written for flags 1 and 2
but the counter, the events and the deduplication keys.
]]
local rcall = redis.call
local base, customId, did = ARGV[1], ARGV[2], ARGV[10]
local maxEvents = rcall('HGET', KEYS[6], 'opts.maxLenEvents')
if not maxEvents then
  maxEvents = 10000
  rcall('HSET', KEYS[6], 'opts.maxLenEvents', maxEvents)
end
local counter = rcall('INCR', KEYS[1])
local jobId = customId ~= '' and customId or tostring(counter)
if rcall('EXISTS', base .. jobId) == 1 then
  rcall('XADD', KEYS[8], 'MAXLEN', '~', maxEvents, '*', 'event', 'duplicated', 'jobId', jobId)
  return {jobId, 1}
end
if did ~= '' then
  local de = cjson.decode(ARGV[5])['de']
  local holder = deduplicate(de, did, base, jobId, KEYS, maxEvents)
  if holder then return {holder, 2} end
end
local k = {wait = KEYS[2], prioritized = KEYS[3], delayed = KEYS[4], pc = KEYS[5], meta = KEYS[6],
           marker = KEYS[7], events = KEYS[8], active = KEYS[9]}
storeAndEnqueue(k, base, jobId, ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7]),
                tonumber(ARGV[8]), ARGV[9] == '1', did ~= '' and did or nil, maxEvents)
return {jobId, 0}
