--[[ read_queue_counts: one queue's jobs per state, paused flag, next waiting job's creation
time and BullMQ's metrics totals, in one call (read-only).

The overview and /metrics read this for every queue: one EVALSHA per queue instead of a dozen
commands (most of a scrape of 200 queues was the client packing and parsing 2,800 replies).
Every read is O(1): LLEN, ZCARD, EXISTS, HEXISTS, LINDEX of an end, HGET. A key of the wrong
type (another tool wrote it) is reported in place of its count, never an error of the call.

KEYS[1] wait  KEYS[2] paused  KEYS[3] prioritized (Bull: priority)  KEYS[4] delayed
KEYS[5] active  KEYS[6] completed  KEYS[7] failed  KEYS[8] waiting-children (Bull: meta-paused)
KEYS[9] meta  KEYS[10] metrics:completed  KEYS[11] metrics:failed
ARGV[1] job key prefix (`<prefix>:<queue>:`)  ARGV[2] '1' for a Bull 3/4 queue
Returns {c1 .. c9, oldest, completed total, failed total}: c1 .. c9 are LLEN wait, LLEN paused,
  ZCARD KEYS[3], ZCARD delayed, LLEN active, ZCARD completed, ZCARD failed, ZCARD
  waiting-children (Bull: EXISTS meta-paused), HEXISTS meta paused, each an integer or, for a
  key of the wrong type, the error text; oldest is the `timestamp` field of the job at the tail
  of wait (or of paused when wait is empty), or nil; the totals are the metrics hashes' `count`
  fields as stored, or nil.
]]
local rcall, pcall_ = redis.call, redis.pcall
local bull = ARGV[2] == '1'
local commands = {'LLEN', 'LLEN', 'ZCARD', 'ZCARD', 'LLEN', 'ZCARD', 'ZCARD', bull and 'EXISTS' or 'ZCARD'}
local out = {}
for i = 1, 8 do
  local value = pcall_(commands[i], KEYS[i])
  if type(value) == 'table' then value = value['err'] or 'ERR unreadable' end
  out[i] = value
end
local paused = pcall_('HEXISTS', KEYS[9], 'paused')
if type(paused) == 'table' then paused = paused['err'] or 'ERR unreadable' end
out[9] = paused

local oldest = false
for _, list in ipairs({KEYS[1], KEYS[2]}) do
  if type(out[list == KEYS[1] and 1 or 2]) == 'number' then
    local id = rcall('LINDEX', list, -1)
    if id then
      local stamp = pcall_('HGET', ARGV[1] .. id, 'timestamp')
      if type(stamp) == 'string' then oldest = stamp end
      break
    end
  end
end
out[10] = oldest
for i = 10, 11 do
  local total = pcall_('HGET', KEYS[i], 'count')
  out[i + 1] = type(total) == 'string' and total or false
end
return out
