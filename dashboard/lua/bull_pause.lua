--[[ bull_pause: pause or resume a legacy Bull 3/4 queue (npm `bull`) as Bull's own pause
script does: the `wait` list becomes `paused` (or back), the `meta-paused` flag is set (or
deleted), `meta.paused` follows it (Bull writes that field itself, for BullMQ's sake), and
`paused` / `resumed` is published on Bull's pub/sub channel. Bull only RENAMEs; when both lists
exist (a half-paused queue another tool left) the ids are merged instead, at most 7000 per
call, so nothing is overwritten: the ids already in `wait` are older and still run first.
The flags change on the call that finishes the move, so that Bull's adds keep going to the
list being emptied until then. Bullpen's pause record (reason, by, until; outside the queue's
keys) is kept as for BullMQ queues. Nothing BullMQ-only (marker, events ...) is written.

KEYS[1] wait list  KEYS[2] paused list  KEYS[3] meta-paused string  KEYS[4] meta hash
KEYS[5] pause record hash
ARGV[1] 'pause' | 'resume' | 'resume-if-due'   ARGV[2] the queue's channel stem (`<prefix>:<queue>:`)
  pause: ARGV[3] reason  ARGV[4] by  ARGV[5] now ms  ARGV[6] resume at ms (0: never by itself)
  resume-if-due: ARGV[3] now ms (resumes only when the record says so, deleting it)
Returns the ids still to move (0: done; the caller repeats the same command while > 0), -1
when resume-if-due found nothing due.
]]
local rcall = redis.call
local bad = wrongType(KEYS, {'list', 'list', 'string', 'hash', 'hash'})
if bad then return bad end
local BATCH = 7000
local mode = ARGV[1]
if mode == 'resume-if-due' then
  if rcall('EXISTS', KEYS[3]) == 0 and rcall('HEXISTS', KEYS[4], 'paused') == 0 then
    rcall('DEL', KEYS[5])  -- resumed elsewhere
    return -1
  end
  local due = tonumber(rcall('HGET', KEYS[5], 'until') or '0') or 0
  if due <= 0 or due > tonumber(ARGV[3]) then return -1 end
  rcall('DEL', KEYS[5])
  mode = 'resume'
end

local src, dst = KEYS[1], KEYS[2]
if mode == 'pause' then
  rcall('DEL', KEYS[5])
  rcall('HSET', KEYS[5], 'reason', ARGV[3], 'by', ARGV[4], 'since', ARGV[5], 'until', ARGV[6])
  rcall('SET', KEYS[3], 1)  -- from now on Bull adds go to `paused`
  rcall('HSET', KEYS[4], 'paused', 1)
else
  src, dst = KEYS[2], KEYS[1]
  rcall('DEL', KEYS[5])
end

if rcall('EXISTS', src) == 1 then
  if rcall('EXISTS', dst) == 0 then
    rcall('RENAME', src, dst)
  elseif mode == 'pause' then
    -- wait's ids are older than paused's: they go to paused's tail, newest first, so the
    -- oldest ends last and still runs first
    local ids = rcall('LRANGE', src, 0, BATCH - 1)
    for i = 1, #ids do rcall('RPUSH', dst, ids[i]) end
    rcall('LTRIM', src, #ids, -1)
  else
    -- paused's ids are newer than wait's: they go to wait's head, oldest first
    local ids = rcall('LRANGE', src, -BATCH, -1)
    for i = #ids, 1, -1 do rcall('LPUSH', dst, ids[i]) end
    rcall('LTRIM', src, 0, -#ids - 1)
  end
end
local left = rcall('LLEN', src)
if left > 0 then return left end

if mode == 'pause' then
  rcall('PUBLISH', ARGV[2] .. 'paused', 'paused')
else
  rcall('DEL', KEYS[3])
  rcall('HDEL', KEYS[4], 'paused')
  rcall('PUBLISH', ARGV[2] .. 'resumed', 'resumed')
end
return 0
