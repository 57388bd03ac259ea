-- Shared by every bench script: done() prints one line that bench/lib/measure.ts parses. Failures
-- are anything but a clean 2xx/3xx: status errors, socket errors and timeouts.

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"seconds":%f,"failures":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration / 1e6, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
