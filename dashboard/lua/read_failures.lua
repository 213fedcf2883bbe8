--[[ read_failures: the next failed jobs, in score order, with what the failure index needs of
each one it lacks (read-only). Long values are cut inside Redis; the call stops early once it
has copied ARGV[6] bytes (at least one job is always read).

KEYS[1] failed zset   KEYS[2] the index's jobs hash
ARGV[1] base   ARGV[2] 'score' (ZRANGEBYSCORE from score ARGV[3], skipping ARGV[4] of them)
                       or 'rank' (ZRANGE from rank ARGV[3])
ARGV[3] start score or rank   ARGV[4] offset (score mode)   ARGV[5] at most this many jobs
ARGV[6] byte budget   ARGV[7] reason cap (bytes)   ARGV[8] cap of the newest trace's head and of its tail
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
    local first, last = '', ''
    if raw ~= '' then
      local ok, items = pcall(cjson.decode, raw)
      local trace = ok and type(items) == 'table' and items[#items]
      if type(trace) == 'string' then
        if #trace <= 2 * traceCap then first = trace
        else first = head(trace, traceCap); last = string.sub(trace, -traceCap) end
      end
    end
    local markOk, mark = pcall(rcall, 'HGET', jobKey, ARGV[10])
    copied = copied + math.min(rlen, decodeLimit) + tlen + 64
    out[#out + 1] = id; out[#out + 1] = score; out[#out + 1] = '0'
    out[#out + 1] = reason; out[#out + 1] = first; out[#out + 1] = last
    out[#out + 1] = markOk and mark or false
  end
end
return out
