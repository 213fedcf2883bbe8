--[[ read_log: one page of a job's log, each line cut to a cap inside Redis (read-only).

Lines are numbered oldest first from 0 (the order add_log appends them). A negative start
counts from the end, as in LRANGE: start -100 with count 100 is the newest 100 lines.
LRANGE hands the script whole lines (lists have no per-element STRLEN), so the cost is
bounded by count times the line length; only the cut lines are sent (cut at a UTF-8 character
boundary, up to 3 bytes short of the cap).

KEYS[1] job logs list
ARGV[1] start (0 = oldest, negative = from the newest end)   ARGV[2] count (> 0)
ARGV[3] cap per line in bytes (-1: no cap)
Returns {total lines, index of the first line returned, line1, len1, line2, len2, ...},
  lines oldest first. total is 0 when the job has no log.
Errors: WRONGTYPE when KEYS[1] exists and is not a list.
]]
local rcall = redis.call
-- The first cap bytes of s, moved back (at most 3 bytes) so no UTF-8 character is split.
local function head(s, cap)
  local n = cap
  while n > 0 and n > cap - 3 do
    local b = string.byte(s, n + 1)
    if b == nil or b < 128 or b >= 192 then break end
    n = n - 1
  end
  return string.sub(s, 1, n)
end
local kind = rcall('TYPE', KEYS[1])['ok']
if kind ~= 'list' and kind ~= 'none' then
  return redis.error_reply('WRONGTYPE ' .. KEYS[1] .. ' holds a ' .. kind .. ', not a list')
end
local total = rcall('LLEN', KEYS[1])
local start, count, cap = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if start < 0 then start = math.max(0, total + start) end
local out = {total, start}
if start >= total then return out end
local lines = rcall('LRANGE', KEYS[1], start, start + count - 1)
for _, line in ipairs(lines) do
  if cap >= 0 and #line > cap then out[#out + 1] = head(line, cap) else out[#out + 1] = line end
  out[#out + 1] = #line
end
return out
