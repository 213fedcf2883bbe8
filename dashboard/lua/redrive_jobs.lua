--[[ redrive_jobs: failed -> waiting for the given jobs (a throttled re-drive's batch), each
marked in a hash field BullMQ ignores, so a later failure shows as "failed again after a
re-drive". Like reprocess_jobs, a job starts over (attempts reset, traces kept as history,
priority kept). Jobs leave the failure index as they leave the failed set.

KEYS[1] failed zset  KEYS[2] wait list  KEYS[3] prioritized zset  KEYS[4] pc string
KEYS[5] marker zset  KEYS[6] events stream  KEYS[7] meta hash
KEYS[8] index jobs hash  KEYS[9] index counts zset  KEYS[10] index again zset  KEYS[11] index meta hash
ARGV[1] base   ARGV[2] cluster key stem   ARGV[3] only jobs failed at or before this score
ARGV[4] mark field   ARGV[5] mark value   ARGV[6..] job ids
Returns {moved to waiting, skipped (no longer failed, failed after ARGV[3], or gone), skipped ids
still in the failed set (and so in the index), then the ids moved}.
]]
local rcall = redis.call
local base, stem, cutoff = ARGV[1], ARGV[2], tonumber(ARGV[3])
local maxEvents = rcall('HGET', KEYS[7], 'opts.maxLenEvents') or 10000
local moved, skipped, kept, ids = 0, 0, 0, {}
for i = 6, #ARGV do
  local id = ARGV[i]
  local jobKey = base .. id
  local score = rcall('ZSCORE', KEYS[1], id)
  if not score then fiUnlink(KEYS[8], KEYS[9], KEYS[10], KEYS[11], stem, id) end
  if notAJob(id) or not score or tonumber(score) > cutoff or rcall('TYPE', jobKey)['ok'] ~= 'hash' then
    skipped = skipped + 1
    if score then kept = kept + 1 end
  else
    rcall('ZREM', KEYS[1], id)
    fiUnlink(KEYS[8], KEYS[9], KEYS[10], KEYS[11], stem, id)
    rcall('HDEL', jobKey, 'finishedOn', 'processedOn', 'failedReason', 'returnvalue', 'defa')
    rcall('HSET', jobKey, 'atm', 0, 'ats', 0, 'stc', 0, ARGV[4], ARGV[5])
    lineUp(jobKey, id, KEYS[2], KEYS[3], KEYS[4])
    rcall('XADD', KEYS[6], 'MAXLEN', '~', maxEvents, '*', 'event', 'waiting', 'jobId', id, 'prev', 'failed')
    moved = moved + 1
    ids[#ids + 1] = id
  end
end
if moved > 0 and rcall('HEXISTS', KEYS[7], 'paused') == 0 then rcall('ZADD', KEYS[5], 0, '0') end
local out = {moved, skipped, kept}
for _, id in ipairs(ids) do out[#out + 1] = id end
return out
