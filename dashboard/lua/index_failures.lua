--[[ index_failures: add failed jobs to the failure index, each checked against the failed set
(a job that left it, or failed again meanwhile, is skipped: the next refresh sees it as it is
then; BullMQ's bookkeeping ids are never passed: the caller leaves them out). A job already indexed in another cluster or at another score moves.

KEYS[1] failed zset  KEYS[2] index jobs hash  KEYS[3] index counts zset  KEYS[4] index again zset
KEYS[5] index meta hash
ARGV[1] cluster key stem (<prefix>::failures:<queue>:c:)
ARGV[2] how many clusters are described (D), then D pairs: cluster id, its description JSON (kept
  for the first job of a cluster); then 4 per job: id, score, cluster id, again ('1' failed after a
  re-drive, else '0') (flat: no JSON to encode and decode)
Returns how many jobs were added or moved.
]]
local stem, added = ARGV[1], 0
local fields, members, counts, again = {}, {}, {}, {}
local descriptions = {}
local first = 3 + 2 * tonumber(ARGV[2])
for i = 3, first - 1, 2 do descriptions[ARGV[i]] = ARGV[i + 1] end
local ids = {}
for i = first, #ARGV, 4 do ids[#ids + 1] = ARGV[i] end
if #ids == 0 then return 0 end
local entries = redis.call('HMGET', KEYS[2], unpack(ids))  -- what the index holds, in one call
local nows = redis.pcall('ZMSCORE', KEYS[1], unpack(ids))  -- their scores now, in one call (Redis 6.2+)
if type(nows) ~= 'table' or nows['err'] then nows = nil end  -- older Redis: one ZSCORE per job
for n, id in ipairs(ids) do
  local i = first + 4 * (n - 1)
  local score, fp, flag = ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local now
  if nows then now = nows[n] else now = redis.call('ZSCORE', KEYS[1], id) end
  if now and tonumber(now) == tonumber(score) then
    local value = fp .. ' ' .. score .. ' ' .. flag
    local entry = entries[n]
    if entry ~= value then
      if entry then fiUnlink(KEYS[2], KEYS[3], KEYS[4], KEYS[5], stem, id) end
      fields[#fields + 1] = id; fields[#fields + 1] = value
      local m = members[fp]
      if not m then m = {}; members[fp] = m; counts[fp] = 0 end
      m[#m + 1] = score; m[#m + 1] = id
      counts[fp] = counts[fp] + 1
      if flag == '1' then again[fp] = (again[fp] or 0) + 1 end
      added = added + 1
    end
  end
end
-- the writes, one command per cluster (and one for the jobs hash) rather than per job
if #fields > 0 then redis.call('HSET', KEYS[2], unpack(fields)) end
for fp, m in pairs(members) do
  redis.call('ZADD', stem .. fp, unpack(m))
  redis.call('ZINCRBY', KEYS[3], counts[fp], fp)
  redis.call('HSETNX', KEYS[5], fp, descriptions[fp])
end
for fp, n in pairs(again) do redis.call('ZINCRBY', KEYS[4], n, fp) end
return added
