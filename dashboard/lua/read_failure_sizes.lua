--[[ read_failure_sizes: a rank range of the failed set with, per job, whether the failure index
already has it and the sizes of its reason and stack traces (read-only, no value is copied), so
the caller can read the values with one SORT ... GET when they are small.

KEYS[1] failed zset   KEYS[2] the index's jobs hash
ARGV[1] base   ARGV[2] first rank   ARGV[3] how many
Returns a flat list, 4 entries per job: id, score, known ('1' when indexed at this score), bytes
of failedReason + stacktrace (0 when known; -1 when the job key is not a hash).
]]
local rcall = redis.call
local start = tonumber(ARGV[2])
local found = rcall('ZRANGE', KEYS[1], start, start + tonumber(ARGV[3]) - 1, 'WITHSCORES')
local out = {}
if #found == 0 then return out end
local ids = {}
for i = 1, #found, 2 do ids[#ids + 1] = found[i] end
local entries = rcall('HMGET', KEYS[2], unpack(ids))  -- what the index holds, in one call
for n, id in ipairs(ids) do
  local score = found[2 * n]
  local entry = entries[n]
  out[#out + 1] = id; out[#out + 1] = score
  local _, indexed = false, nil
  if entry then _, indexed = string.match(entry, '^(%S+) (%S+) ') end
  if indexed and tonumber(indexed) == tonumber(score) then
    out[#out + 1] = '1'; out[#out + 1] = 0
  else
    local jobKey = ARGV[1] .. id
    local ok, a = pcall(rcall, 'HSTRLEN', jobKey, 'stacktrace')
    local size = -1
    if ok then size = a + rcall('HSTRLEN', jobKey, 'failedReason') end
    out[#out + 1] = '0'; out[#out + 1] = size
  end
end
return out
