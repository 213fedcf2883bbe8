--[[ remove_failed_jobs: delete the given jobs if they are still failed (failed at or before
ARGV[3]) and not locked, as delete_jobs deletes (logs, locks, a deduplication slot naming
them). A job that left the failed set meanwhile is left alone. Jobs leave the failure index.

KEYS[1] failed zset  KEYS[2] events stream  KEYS[3] meta hash
KEYS[4] index jobs hash  KEYS[5] index counts zset  KEYS[6] index again zset  KEYS[7] index meta hash
ARGV[1] base   ARGV[2] cluster key stem   ARGV[3] only jobs failed at or before this score
ARGV[4..] job ids
Returns {deleted, skipped, skipped ids still in the failed set (and so in the index)}.
]]
local rcall = redis.call
local base, stem, cutoff = ARGV[1], ARGV[2], tonumber(ARGV[3])
local deleted, skipped, kept = 0, 0, 0
for i = 4, #ARGV do
  local id = ARGV[i]
  local jobKey = base .. id
  local score = rcall('ZSCORE', KEYS[1], id)
  if not score then fiUnlink(KEYS[4], KEYS[5], KEYS[6], KEYS[7], stem, id) end
  if notAJob(id) or not score or tonumber(score) > cutoff or rcall('EXISTS', jobKey .. ':lock') == 1 then
    skipped = skipped + 1
    if score then kept = kept + 1 end
  else
    rcall('ZREM', KEYS[1], id)
    fiUnlink(KEYS[4], KEYS[5], KEYS[6], KEYS[7], stem, id)
    local ok, deid = pcall(rcall, 'HGET', jobKey, 'deid')
    if ok and deid and rcall('GET', base .. 'de:' .. deid) == id then
      rcall('DEL', base .. 'de:' .. deid, base .. 'dn:' .. deid)
    end
    rcall('DEL', jobKey, jobKey .. ':logs', jobKey .. ':lock', jobKey .. ':dependencies',
          jobKey .. ':processed', jobKey .. ':failed', jobKey .. ':unsuccessful')
    deleted = deleted + 1
  end
end
if deleted > 0 then
  local maxEvents = rcall('HGET', KEYS[3], 'opts.maxLenEvents') or 10000
  rcall('XADD', KEYS[2], 'MAXLEN', '~', maxEvents, '*', 'event', 'cleaned', 'count', deleted)
end
return {deleted, skipped, kept}
