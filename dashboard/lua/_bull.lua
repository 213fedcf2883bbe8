--[[ _bull: helpers for the bull_* scripts (legacy Bull 3/4 queues); not a script of its own. ]]

-- The list Bull sends a job to: `paused` while the queue's `meta-paused` flag exists, else
-- `wait` (Bull's getTargetQueueList).
local function bullTarget(metaPaused, wait, paused)
  if redis.call('EXISTS', metaPaused) == 1 then return paused end
  return wait
end

-- Put a job with a priority where Bull would: into the `priority` zset, and into the target
-- list just before the first job of a lower priority (a higher score), as Bull's
-- addJobWithPriority does.
local function bullAddWithPriority(priorityKey, priority, jobId, target)
  redis.call('ZADD', priorityKey, priority, jobId)
  local count = redis.call('ZCOUNT', priorityKey, 0, priority)
  local len = redis.call('LLEN', target)
  local id = redis.call('LINDEX', target, len - (count - 1))
  if id then redis.call('LINSERT', target, 'BEFORE', id, jobId) else redis.call('RPUSH', target, jobId) end
end

-- Delete a job's hash and logs and what Bull indexes it by (its rate-limiter group entry,
-- and its debounce key when that still names this job), after it left every list and set.
local function bullDeleteJob(base, jobId, limiterKey)
  local jobKey = base .. jobId
  local deid = redis.call('HGET', jobKey, 'deid')
  local dedupKey = deid and base .. 'de:' .. deid
  if deid and redis.call('TYPE', dedupKey)['ok'] == 'string' and redis.call('GET', dedupKey) == jobId then
    redis.call('DEL', dedupKey)
  end
  redis.call('DEL', jobKey, jobKey .. ':logs')
  local index = limiterKey .. ':index'
  if redis.call('TYPE', index)['ok'] == 'hash' then
    local group = redis.call('HGET', index, jobId)
    if group then
      if redis.call('TYPE', group)['ok'] == 'set' then redis.call('SREM', group, jobId) end
      redis.call('HDEL', index, jobId)
    end
  end
end
