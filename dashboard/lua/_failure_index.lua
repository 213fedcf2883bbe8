--[[ _failure_index: helpers scripts.py puts in front of the scripts that keep the failure
index (dashboard/failure_index.py) right; not a script of its own. The index lives in keys
BullMQ never reads (<prefix>::failures:<queue>:...): `jobs` hash (job id -> "<cluster> <score>
<again 0|1>"), `counts` zset (cluster -> jobs), `again` zset (cluster -> jobs that failed again
after a re-drive), `meta` hash (cluster -> description JSON), and one zset per cluster
(`c:<cluster>`: job id -> failed-at score). ]]

-- Take job `id` out of the index (its cluster's set and counts); false when it was not in it.
local function fiUnlink(jobsKey, countsKey, againKey, metaKey, stem, id)
  local entry = redis.call('HGET', jobsKey, id)
  if not entry then return false end
  redis.call('HDEL', jobsKey, id)
  local fp, _, again = string.match(entry, '^(%S+) (%S+) (%S+)$')
  if not fp then return true end
  redis.call('ZREM', stem .. fp, id)
  if tonumber(redis.call('ZINCRBY', countsKey, -1, fp)) <= 0 then
    redis.call('ZREM', countsKey, fp)
    redis.call('ZREM', againKey, fp)
    redis.call('HDEL', metaKey, fp)
  elseif again == '1' and tonumber(redis.call('ZINCRBY', againKey, -1, fp)) <= 0 then
    redis.call('ZREM', againKey, fp)
  end
  return true
end

-- The score the index recorded for `id`, or nil.
local function fiScore(jobsKey, id)
  local entry = redis.call('HGET', jobsKey, id)
  if not entry then return nil end
  local _, score = string.match(entry, '^(%S+) (%S+) ')
  return tonumber(score)
end
