--[[ read_job_fields: some fields of ONE job hash, each cut to a cap inside Redis (read-only).

Redis has no HGETRANGE. HSTRLEN (O(1)) comes first: a field within its cap is read with
HGET as it is. A longer field of at most ARGV[1] bytes is copied whole into Lua by HGET (the
server copies it into the call's reply buffer, joins that, then makes the Lua string: 0.06 ms
per MB on Redis 6.2 with glibc malloc, 1.1 to 2.4 ms per MB on Debian's Redis 7.0, whose jemalloc
returns the memory so that every copy page-faults), then cut with string.sub at a UTF-8
character boundary (up to 3 bytes short of the cap), so only the cut part is sent. A field
longer than ARGV[1] is not read: only its length comes back. Callers ask with ARGV[1] = 0
for a whole page of jobs first, then for the long fields one field per call.

A field of kind 'a' holds a JSON array of strings (stacktrace). When it is longer than its
cap and at most ARGV[2] bytes long it is decoded (cjson, 0.7 to 1.8 ms per MB) and each of
its newest ARGV[3] elements is cut to the cap; when longer than ARGV[2] it is cut as text.

KEYS[1] job hash
ARGV[1] copy limit: fields longer than their cap are cut when at most this long (0: none)
ARGV[2] decode limit (bytes) for kind 'a'   ARGV[3] at most this many elements of kind 'a'
ARGV[4..] triples: field, cap in bytes (-1: no cap), kind ('s' text, 'a' JSON array of strings)
Returns {exists (1/0), then one entry per field: {value or nil, full length in bytes}}.
  For a split kind 'a' field the value is {element count, e1, len1, e2, len2, ...} (the newest
  elements, oldest of them first). A field not read (longer than its cap and than ARGV[1]) has
  value nil and length > 0; a missing field has value nil and length 0 (HSTRLEN cannot tell
  a missing field from an empty one: an empty one is read).
Errors: WRONGTYPE when KEYS[1] exists and is not a hash.
]]
local rcall = redis.call
local key = KEYS[1]
local kind = rcall('TYPE', key)['ok']
if kind == 'none' then return {0} end
if kind ~= 'hash' then
  return redis.error_reply('WRONGTYPE ' .. key .. ' holds a ' .. kind .. ', not a hash')
end
local copyLimit = tonumber(ARGV[1])
local decodeLimit, maxElements = tonumber(ARGV[2]), tonumber(ARGV[3])

local function split(raw, cap)
  if string.sub(raw, 1, 1) ~= '[' then return nil end
  local ok, items = pcall(cjson.decode, raw)
  if not ok or type(items) ~= 'table' then return nil end
  local n = #items
  local out = {n}
  for i = math.max(1, n - maxElements + 1), n do
    local item = items[i]
    if type(item) ~= 'string' then item = cjson.encode(item) end
    out[#out + 1] = head(item, cap)
    out[#out + 1] = #item
  end
  return out
end

local out = {1}
for i = 4, #ARGV, 3 do
  local field, cap, fkind = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2]
  local len = rcall('HSTRLEN', key, field)
  local value = false
  if cap < 0 or len <= cap then
    value = rcall('HGET', key, field) or false
  elseif len <= copyLimit then
    local raw = rcall('HGET', key, field) or ''
    len = #raw
    if fkind == 'a' and len <= decodeLimit then value = split(raw, cap) end
    if not value then value = head(raw, cap) end
  end
  out[#out + 1] = {value, len}
end
return out
