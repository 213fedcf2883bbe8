--[[ _attempts: a helper scripts.py puts in front of move_to_finished and retry_job; not a
script of its own. Each attempt a Bullpen worker finishes is recorded in the job hash as
field `bpAttempt:<started ms>:<ats>` = "<finished ms> <outcome>" (completed, failed, retried;
ats: the job's attempts-started count, so two attempts started in the same millisecond stay two),
written by the HSET the script makes anyway (no extra command). BullMQ ignores the field and
it goes away with the job; a re-drive (which resets atm) keeps the earlier ones. ]]

-- The field and value recording attempt number `ats` that started at `started` (processedOn) and
-- finished now.
local function attemptFields(started, ats, finished, outcome)
  return 'bpAttempt:' .. (started or '0') .. ':' .. (ats or '0'), finished .. ' ' .. outcome
end
