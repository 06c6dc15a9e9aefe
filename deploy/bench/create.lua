-- GreenArrow create: every request POSTs a relay server with a name of its own,
-- PREFIX-<thread>-<counter>. wrk -s create.lua URL -- PREFIX (a different PREFIX per run).
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "") .. "report.lua")

local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("thread_number", threads)
end

local prefix, counter = "bench", 0
function init(args)
  prefix = args[1] or prefix
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"relay_server": {"name": "%s-%d-%d", ' ..
    '"source_ip": {"ip": "127.0.0.2", "hostname": "out.bench.example.com"}, ' ..
    '"destination": {"hostname": "smtp.bench.example.net", "port": 25}, ' ..
    '"throttle_limits": {"max_concurrent_connections": 2, "max_messages_per_hour": 120}}}',
    prefix, thread_number, counter)
  return wrk.format("POST", nil, nil, body)
end
