-- One fixed request, sent again and again: wrk -s replay.lua URL -- METHOD [BODY_FILE]
-- Headers come from wrk's -H options; the body is read once from BODY_FILE, byte for byte (a
-- SigV4 signature covers it).
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "") .. "report.lua")

function init(args)
  wrk.method = args[1] or "GET"
  if args[2] then
    local file = assert(io.open(args[2], "rb"))
    wrk.body = file:read("*a")
    file:close()
  end
end
