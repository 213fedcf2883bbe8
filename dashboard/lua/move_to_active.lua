--[[ move_to_active: promote due delayed jobs, then take up to N ready jobs and lock them.

KEYS[1] wait  list   KEYS[2] active  list   KEYS[3] prioritized zset   KEYS[4] delayed zset
KEYS[5] pc    string KEYS[6] meta    hash   KEYS[7] marker      zset   KEYS[8] events  stream
KEYS[9] limiter string
ARGV[1] base   ARGV[2] token prefix (each job's token is prefix .. ':' .. n)
ARGV[3] lock duration ms   ARGV[4] now ms ('' for the server's TIME: a fetch a worker sends right behind
its blocking pop of the marker runs when the pop returns, later than it was sent)
ARGV[5] most jobs to take   ARGV[6] worker name or ''
ARGV[7] the worker limiter's max ('' for none)   ARGV[8] its duration ms ('' for none)
Rate limit as BullMQ's moveToActive: max is meta `max` else the worker's, duration the
worker's else meta `duration`; each job taken (but deferred failures) INCRs `limiter`, which
gets PEXPIRE duration when it becomes 1; while `limiter` >= max and has a TTL, nothing is taken.
Returns {taken, next_due, dropped, limited}: taken is a flat list id, token, {hash fields...} per job
(wait first, then prioritized, as BullMQ serves them); next_due is the due ms of the earliest
delayed job, or -1 when nothing is delayed; dropped lists {id, type} for each id taken off the
queue because its job key holds another type than a hash, or is one of BullMQ's bookkeeping
keys (type 'bookkeeping': such a key is never written; ids whose hash is gone are dropped
silently); limited is the limiter's PTTL ms when the rate limit stopped the fetch, else 0.
Error: a WRONGTYPE reply naming the first of KEYS that holds the wrong type (nothing changed);
a key this call does not touch is not checked (pc without due delayed jobs, limiter without a
rate limit; prioritized is checked when wait runs empty: then jobs already taken are returned
and the next call answers the error).
]]
return fetchJobs(KEYS, ARGV)
