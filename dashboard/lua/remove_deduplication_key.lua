--[[ remove_deduplication_key: drop a deduplication slot, as BullMQ's Queue.removeDeduplicationKey
does (a plain DEL: a kept add in `dn:<id>` is left as it is, exactly as BullMQ leaves it).

KEYS[1] de:<id>   string   the slot
Returns the number of keys deleted (0 or 1).
]]
return redis.call('DEL', KEYS[1])
