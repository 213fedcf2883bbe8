--[[ obliterate: the last step of Queue.obliterate, once every state is empty: delete the
queue's remaining bookkeeping keys. Refuses while any job is left.

KEYS[1..8] wait, paused, active, prioritized, delayed, waiting-children, completed, failed
KEYS[9..] bookkeeping keys to delete (meta, events, id, pc, marker, stalled, ...)
Returns 1 when the queue is gone, 0 when jobs remain (the caller deletes more and retries).
]]
local rcall = redis.call
for i = 1, 8 do
  if rcall('EXISTS', KEYS[i]) == 1 then return 0 end
end
for i = 9, #KEYS do rcall('DEL', KEYS[i]) end
return 1
