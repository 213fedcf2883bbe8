--[[ add_log: append one line to a job's log, keeping at most the newest N lines when asked.

KEYS[1] job hash   KEYS[2] job logs list
ARGV[1] the line   ARGV[2] lines to keep (0 = all)
Returns the number of lines now in the log, or -1 when the job does not exist.
Error: a WRONGTYPE reply naming the key when either holds the wrong type (nothing changed).
]]
local rcall = redis.call
local bad = wrongType(KEYS, {'hash', 'list'})
if bad then return bad end
if rcall('EXISTS', KEYS[1]) == 0 then return -1 end
local count = rcall('RPUSH', KEYS[2], ARGV[1])
local keep = tonumber(ARGV[2])
if keep > 0 and count > keep then
  rcall('LTRIM', KEYS[2], -keep, -1)
  count = keep
end
return count
