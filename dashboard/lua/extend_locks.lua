--[[ extend_locks: renew the locks a worker holds, and clear those jobs from the stalled set.

KEYS[1] stalled set
ARGV[1] base   ARGV[2] lock duration ms   ARGV[3..] pairs of job id, token
Returns the ids whose lock is gone or held by another token (the worker has lost them).
]]
local rcall = redis.call
local lost = {}
for i = 3, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  local lockKey = ARGV[1] .. id .. ':lock'
  if rcall('GET', lockKey) == token then
    rcall('SET', lockKey, token, 'PX', ARGV[2])
    rcall('SREM', KEYS[1], id)
  else
    lost[#lost + 1] = id
  end
end
return lost
