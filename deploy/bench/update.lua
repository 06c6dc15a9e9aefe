-- GreenArrow partial update of one relay server: PUT its destination port, alternating between
-- 2525 and 2526 so that every request really changes the row. wrk -s update.lua URL
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "") .. "report.lua")

local counter = 0
function request()
  counter = counter + 1
  local body = string.format(
    '{"relay_server": {"destination": {"port": %d}}}', 2525 + counter % 2)
  return wrk.format("PUT", nil, nil, body)
end
