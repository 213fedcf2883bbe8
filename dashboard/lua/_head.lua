--[[ _head: a helper scripts.py puts in front of the bounded reads (read_job_fields,
read_log); not a script of its own. ]]
-- The first cap bytes of s, moved back (at most 3 bytes) so no UTF-8 character is split.
local function head(s, cap)
  local n = cap
  while n > 0 and n > cap - 3 do
    local b = string.byte(s, n + 1)
    if b == nil or b < 128 or b >= 192 then break end
    n = n - 1
  end
  return string.sub(s, 1, n)
end
