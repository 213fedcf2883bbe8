--[[ read_log: one page of a job's log, each line cut to a cap inside Redis (read-only).

Lines are numbered oldest first from 0 (the order add_log appends them). A negative start
counts from the end, as in LRANGE: start -100 with count 100 is the newest 100 lines.
Lists have no per-element STRLEN, so LRANGE hands the script whole lines (copying them costs
up to 2.5 ms per MB on Debian's Redis 7.0): the page stops early once the lines read add up
to ARGV[4] bytes (at least one line is read). A page anchored at the newest end (negative
start) keeps its newest lines, one anchored at a line number keeps its oldest. Lines are read
a few at a time, as many as the average length so far says will fit. Only the cut lines are
sent (cut at a UTF-8 character boundary, up to 3 bytes short of the cap).

KEYS[1] job logs list
ARGV[1] start (0 = oldest, negative = from the newest end)   ARGV[2] count (> 0)
ARGV[3] cap per line in bytes (-1: no cap)   ARGV[4] bytes of whole lines to read at most
Returns {total lines, index of the first line returned, line1, len1, line2, len2, ...},
  lines oldest first. total is 0 when the job has no log.
Errors: WRONGTYPE when KEYS[1] exists and is not a list.
]]
local rcall = redis.call
local key = KEYS[1]
local kind = rcall('TYPE', key)['ok']
if kind ~= 'list' and kind ~= 'none' then
  return redis.error_reply('WRONGTYPE ' .. key .. ' holds a ' .. kind .. ', not a list')
end
local total = rcall('LLEN', key)
local start, count, cap, budget = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local fromEnd = start < 0
if fromEnd then start = math.max(0, total + start) end
local last = math.min(total, start + count) - 1
if start > last then return {total, start} end

-- Walk from one end of [start, last] towards the other, reading step lines at a time.
local picked, used, left = {}, 0, last - start + 1
local nextLine, dir = start, 1
if fromEnd then nextLine, dir = last, -1 end
while left > 0 and used < budget do
  local step = 1
  if #picked > 0 then step = math.ceil((budget - used) / (used / #picked)) end
  step = math.max(1, math.min(step, left))
  local lo, hi = nextLine, nextLine + step - 1
  if fromEnd then lo, hi = nextLine - step + 1, nextLine end
  local chunk = rcall('LRANGE', key, lo, hi)
  local from, to = 1, #chunk
  if fromEnd then from, to = #chunk, 1 end
  for i = from, to, dir do
    picked[#picked + 1] = chunk[i]
    used = used + #chunk[i]
    if used >= budget then break end
  end
  nextLine = nextLine + dir * step
  left = left - step
end

local first = start
if fromEnd then first = last - #picked + 1 end
local out = {total, first}
local a, b, d = 1, #picked, 1
if fromEnd then a, b, d = #picked, 1, -1 end
for i = a, b, d do
  local line = picked[i]
  if cap >= 0 and #line > cap then out[#out + 1] = head(line, cap) else out[#out + 1] = line end
  out[#out + 1] = #line
end
return out
