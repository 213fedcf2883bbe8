--[[ extend_locks: renew the locks a worker holds, and clear those jobs from the stalled set.

KEYS[1] stalled set
ARGV[1] base   ARGV[2] lock duration ms   ARGV[3..] pairs of job id, token
Returns {id, type of its lock key} for each job whose lock is gone ('none'), held by another
token ('string') or overwritten with another type by some tool: the worker has lost them.
Error: a WRONGTYPE reply when the stalled key holds the wrong type (nothing changed; checked when
a lock is renewed).
]]
local rcall = redis.call
local lost = {}
for i = 3, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  local lockKey = ARGV[1] .. id .. ':lock'
  if redis.pcall('GET', lockKey) == token then
    -- SREM first: it checks the stalled set's type, failing (if ever) before any write
    if not try('SREM', KEYS[1], id) then return wrongType(KEYS, {'set'}) or tryError end
    rcall('SET', lockKey, token, 'PX', ARGV[2])
  else
    lost[#lost + 1] = {id, typeOf(lockKey)}
  end
end
return lost
