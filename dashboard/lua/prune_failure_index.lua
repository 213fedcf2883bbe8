--[[ prune_failure_index: one HSCAN step over the failure index, taking out every job that is
no longer in the failed set at the score indexed (retried, removed, cleaned or trimmed by any
tool, BullMQ's included).

KEYS[1] failed zset  KEYS[2] index jobs hash  KEYS[3] index counts zset  KEYS[4] index again zset
KEYS[5] index meta hash
ARGV[1] cluster key stem   ARGV[2] HSCAN cursor   ARGV[3] HSCAN COUNT
Returns {next cursor ('0' when the scan is over), jobs taken out}.
]]
local reply = redis.call('HSCAN', KEYS[2], ARGV[2], 'COUNT', tonumber(ARGV[3]))
local pairs, pruned = reply[2], 0
for i = 1, #pairs, 2 do
  local id = pairs[i]
  local _, score = string.match(pairs[i + 1], '^(%S+) (%S+) ')
  local now = redis.call('ZSCORE', KEYS[1], id)
  if not now or tonumber(now) ~= tonumber(score) then
    fiUnlink(KEYS[2], KEYS[3], KEYS[4], KEYS[5], ARGV[1], id)
    pruned = pruned + 1
  end
end
return {reply[1], pruned}
