--[[ read_job_fields: some fields of SEVERAL job hashes, each cut to a cap inside Redis (read-only).

One call reads a whole page of jobs (one EVALSHA instead of one per job: the per-call cost
of EVALSHA and of packing the field list 100 times was most of a 100-row page's time).

Redis has no HGETRANGE. A small job (at most 64 fields and 16 KB in all, by HLEN, which also
tells a hash from other types and from no key, and MEMORY USAGE) is read with one HMGET of the fields asked for, and each is measured in Lua: copying
16 KB costs less than a command per field. For a larger one, HSTRLEN (O(1)) comes first for
every field: the fields within their cap are then read with one HMGET as they are. Both give
the same answer. A longer field of at most ARGV[1] bytes is
copied whole into Lua by HGET (the server copies it into the call's reply buffer, joins
that, then makes the Lua string: 0.06 ms per MB on Redis 6.2 with glibc malloc, 1.1 to 2.4
ms per MB on Debian's Redis 7.0, whose jemalloc returns the memory so that every copy
page-faults), then cut with string.sub at a UTF-8 character boundary (up to 3 bytes short of
the cap), so only the cut part is sent. A field longer than ARGV[1] is not read: only its
length comes back. Callers ask with ARGV[1] = 0 for a whole page of jobs first, then for
the long fields in calls that copy a bounded number of bytes.

A field of kind 'a' holds a JSON array of strings (stacktrace). When it is longer than its
cap and at most ARGV[2] bytes long it is decoded (cjson, 0.7 to 1.8 ms per MB) and each of
its newest ARGV[3] elements is cut to the cap; when longer than ARGV[2] it is cut as text.

KEYS[1..n] job hashes (one queue: one hash slot)
ARGV[1] copy limit: fields longer than their cap are cut when at most this long (0: none)
ARGV[2] decode limit (bytes) for kind 'a'   ARGV[3] at most this many elements of kind 'a'
ARGV[4] how many triples follow (F)
ARGV[5 .. 4+3F] triples: field, cap in bytes (-1: no cap), kind ('s' text, 'a' JSON array of strings)
ARGV[5+3F ..] optional, one per key: which triples to read for that key, as a string of
  1-based triple numbers separated by commas (absent: all of them)
Returns one entry per key:
  {0} no such key; {-1, 'WRONGTYPE ...'} the key is not a hash;
  {2, then each field's value or nil} when every field asked for (all triples) is whole: a small
  hash whose fields are all within their caps, the usual case, answered without a Lua step per
  field (half the time of a page of 100);
  {1, then for each field read: value or nil, full length in bytes} (flat: no table per field).
  For a split kind 'a' field the value is {element count, e1, len1, e2, len2, ...} (the newest
  elements, oldest of them first). A field not read (longer than its cap and than ARGV[1]) has
  value nil and length > 0; a missing field has value nil and length 0 (HSTRLEN cannot tell
  a missing field from an empty one: an empty one is read).
]]
local rcall = redis.call
local copyLimit = tonumber(ARGV[1])
local decodeLimit, maxElements = tonumber(ARGV[2]), tonumber(ARGV[3])
local nfields = tonumber(ARGV[4])
local firstPick = 5 + 3 * nfields

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

local SMALL_FIELDS, SMALL_BYTES = 64, 16384

local function cut(raw, cap, fkind)
  local value = false
  if fkind == 'a' and #raw <= decodeLimit then value = split(raw, cap) end
  if not value then value = head(raw, cap) end
  return value
end

local all, allNames, allCaps = {}, {}, {}
for t = 1, nfields do all[t], allNames[t], allCaps[t] = t, ARGV[2 + 3 * t], tonumber(ARGV[3 + 3 * t]) end

local function readOne(key, picks)
  local size = redis.pcall('HLEN', key)  -- 0: no such key (a hash has a field); an error: not a hash
  if type(size) == 'table' then
    return {-1, 'WRONGTYPE ' .. key .. ' holds a ' .. rcall('TYPE', key)['ok'] .. ', not a hash'}
  end
  if size == 0 then return {0} end
  local out = {1}
  if size <= SMALL_FIELDS and rcall('MEMORY', 'USAGE', key, 'SAMPLES', '0') <= SMALL_BYTES then
    local names = allNames
    if picks ~= all then
      names = {}
      for p = 1, #picks do names[p] = ARGV[2 + 3 * picks[p]] end
    end
    local values = rcall('HMGET', key, unpack(names))
    if picks == all then  -- the usual case, every field within its cap: HMGET's reply as it is
      local whole = true
      for p = 1, #names do
        local raw, cap = values[p], allCaps[p]
        if raw and cap >= 0 and #raw > cap then whole = false; break end
      end
      if whole then return {2, unpack(values)} end
    end
    for p = 1, #picks do
      local i = 2 + 3 * picks[p]
      local cap, fkind, raw = tonumber(ARGV[i + 1]), ARGV[i + 2], values[p]
      local len = raw and #raw or 0
      local value = false
      if cap < 0 or len <= cap then
        value = raw
      elseif len <= copyLimit then
        value = cut(raw, cap, fkind)
      end
      out[2 * p], out[2 * p + 1] = value, len
    end
    return out
  end
  local whole, wholeAt = {}, {}
  for p = 1, #picks do
    local i = 2 + 3 * picks[p]  -- ARGV index of the triple's field name
    local field, cap, fkind = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2]
    local len = rcall('HSTRLEN', key, field)
    local value = false
    if cap < 0 or len <= cap then
      whole[#whole + 1] = field
      wholeAt[#wholeAt + 1] = 2 * p
    elseif len <= copyLimit then
      local raw = rcall('HGET', key, field) or ''
      len = #raw
      value = cut(raw, cap, fkind)
    end
    out[2 * p], out[2 * p + 1] = value, len
  end
  if #whole > 0 then
    local values = rcall('HMGET', key, unpack(whole))
    for w = 1, #whole do out[wholeAt[w]] = values[w] end
  end
  return out
end

local replies = {}
for k = 1, #KEYS do
  local picks = all
  local spec = ARGV[firstPick + k - 1]
  if spec then
    picks = {}
    for n in string.gmatch(spec, '%d+') do picks[#picks + 1] = tonumber(n) end
  end
  replies[k] = readOne(KEYS[k], picks)
end
return replies
