--[[ read_queue_kind: whether a queue was written by legacy Bull 3/4 (npm `bull`) or by BullMQ,
from its keys; read-only. In order: BullMQ's `meta.version` says BullMQ; Bull's `meta-paused`
flag or `priority` zset says Bull; else the newest job found at the ends of the state lists and
sets decides: BullMQ's `atm`/`ats`/`rjk` say BullMQ, else `opts` decide (Bull's always hold
`timestamp`; BullMQ's only a repeatable job's). Bull's `attemptsMade` alone decides nothing: one
odd hash another tool wrote must not turn a BullMQ queue into a Bull one (workers refuse those);
else BullMQ's `events` stream, `marker`, `prioritized` or `pc` say BullMQ; else an `id`
counter or a `paused` list without them says Bull (BullMQ 6 writes `events` on every add).

KEYS[1] meta  KEYS[2] meta-paused  KEYS[3] priority  KEYS[4..9] wait paused active delayed completed failed
KEYS[10..13] events marker prioritized pc  KEYS[14] id
ARGV[1] base
Returns 1 Bull, 0 BullMQ, -1 nothing to tell (no such keys).
]]
local rcall = redis.call
local version = redis.pcall('HGET', KEYS[1], 'version')
if type(version) == 'string' and string.sub(version, 1, 6) == 'bullmq' then return 0 end
if rcall('EXISTS', KEYS[2]) == 1 or rcall('EXISTS', KEYS[3]) == 1 then return 1 end
for i = 4, 9 do
  local kind = rcall('TYPE', KEYS[i])['ok']
  local ids = {}
  if kind == 'list' then ids = {rcall('LINDEX', KEYS[i], 0), rcall('LINDEX', KEYS[i], -1)}
  elseif kind == 'zset' then ids = rcall('ZRANGE', KEYS[i], -1, -1) end
  for _, id in pairs(ids) do
    local jobKey = id and ARGV[1] .. id
    if id and not notAJob(id) and rcall('TYPE', jobKey)['ok'] == 'hash' then
      local f = rcall('HMGET', jobKey, 'atm', 'ats', 'rjk')
      if f[1] or f[2] or f[3] then return 0 end
      if rcall('HSTRLEN', jobKey, 'opts') <= 65536 then
        local opts = rcall('HGET', jobKey, 'opts') or ''
        if not string.find(opts, '"repeat', 1, true) then
          return string.find(opts, '"timestamp":', 1, true) and 1 or 0
        end
      end
    end
  end
end
for i = 10, 13 do
  if rcall('EXISTS', KEYS[i]) == 1 then return 0 end
end
if rcall('EXISTS', KEYS[14]) == 1 or rcall('EXISTS', KEYS[5]) == 1 then return 1 end
return -1
