-- Shared by the bench scripts (loaded with dofile): after wrk's own report, print the run's
-- figures as one machine-readable line for deploy/bench/run.py. `errors.status` is the counter
-- wrk prints as "Non-2xx or 3xx responses"; latencies are in microseconds.
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"non2xx": %d, "connect": %d, "read": %d, "write": %d, "timeout": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect, e.read, e.write, e.timeout))
end
