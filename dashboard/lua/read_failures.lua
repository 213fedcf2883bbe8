--[[ read_failures: the next failed jobs, in score order, with what the failure index needs of
each one it lacks (read-only). Long values are cut inside Redis; the call stops early once it
has copied ARGV[6] bytes (at least one job is always read).

KEYS[1] failed zset   KEYS[2] the index's jobs hash
ARGV[1] base   ARGV[2] 'score' (ZRANGEBYSCORE from score ARGV[3], skipping ARGV[4] of them)
                       or 'rank' (ZRANGE from rank ARGV[3])
ARGV[3] start score or rank   ARGV[4] offset (score mode)   ARGV[5] at most this many jobs
ARGV[6] byte budget   ARGV[7] reason cap (bytes)   ARGV[8] cap of the newest trace's head and of its tail (both still JSON-escaped)
ARGV[9] a stacktrace field longer than this is not read   ARGV[10] the re-drive mark field
Returns {1 when it stopped early (byte budget) else 0, then 7 entries per job taken: id, score, known ('1' when the index has it at
this score; then the rest are false), failedReason head, newest trace head, its tail ('' when
the head is all of it), re-drive mark (or false)}. A job whose hash is gone or is not a hash
gives empty texts.
]]
local rcall = redis.call
local base, limit = ARGV[1], tonumber(ARGV[5])
local budget, reasonCap, traceCap, decodeLimit = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]),
  tonumber(ARGV[9])
local found
if ARGV[2] == 'rank' then
  local start = tonumber(ARGV[3])
  found = rcall('ZRANGE', KEYS[1], start, start + limit - 1, 'WITHSCORES')
else
  found = rcall('ZRANGEBYSCORE', KEYS[1], ARGV[3], '+inf', 'WITHSCORES', 'LIMIT', tonumber(ARGV[4]), limit)
end
local function field(jobKey, name, cap)
  local ok, len = pcall(rcall, 'HSTRLEN', jobKey, name)
  if not ok or len == 0 or len > decodeLimit then return '', 0 end
  local value = rcall('HGET', jobKey, name) or ''
  if cap and #value > cap then value = head(value, cap) end
  return value, len
end
-- The newest element of a JSON array of strings (as BullMQ and our workers store stack traces),
-- still JSON-escaped, found by its separator in the last 2 * cap + 16 bytes (no decoding: that
-- costs 10 times more): {head, tail} of it, each at most cap bytes ('' tail when the head holds
-- it all). An element longer than the window gives its tail only (head '').
local function newestTrace(raw, cap)
  local n = #raw
  if n < 4 or string.sub(raw, 1, 1) ~= '[' then return '', '' end
  local from = math.max(1, n - 2 * cap - 16)
  local s = string.sub(raw, from)
  local start, pos = nil, 1
  while true do
    local i = string.find(s, '",', pos, true)
    if not i then break end
    local b, j = 0, i - 1
    while j >= 1 and string.byte(s, j) == 92 do b = b + 1; j = j - 1 end
    local k = i + 2
    while string.byte(s, k) == 32 do k = k + 1 end
    if b % 2 == 0 and string.byte(s, k) == 34 then start = k + 1 end
    pos = i + 2
  end
  local whole = true
  if not start then
    if from == 1 then start = 3 else start = 1; whole = false end
  end
  local body = string.sub(s, start)
  if string.sub(body, -2) == '"]' then body = string.sub(body, 1, -3) end
  if not whole then return '', string.sub(body, -cap) end
  if #body <= 2 * cap then return body, '' end
  return head(body, cap), string.sub(body, -cap)
end

local out, copied = {0}, 0
for i = 1, #found, 2 do
  if copied >= budget and i > 1 then out[1] = 1; break end
  local id, score = found[i], found[i + 1]
  local known = fiScore(KEYS[2], id)
  if known and known == tonumber(score) then
    out[#out + 1] = id; out[#out + 1] = score; out[#out + 1] = '1'
    out[#out + 1] = false; out[#out + 1] = false; out[#out + 1] = false; out[#out + 1] = false
  else
    local jobKey = base .. id
    local reason, rlen = field(jobKey, 'failedReason', reasonCap)
    local raw, tlen = field(jobKey, 'stacktrace', nil)
    local first, last = newestTrace(raw, traceCap)
    local markOk, mark = pcall(rcall, 'HGET', jobKey, ARGV[10])
    copied = copied + math.min(rlen, decodeLimit) + tlen + 64
    out[#out + 1] = id; out[#out + 1] = score; out[#out + 1] = '0'
    out[#out + 1] = reason; out[#out + 1] = first; out[#out + 1] = last
    out[#out + 1] = markOk and mark or false
  end
end
return out
