-- wrk script of the benchmark: the request method, an optional Accept
-- header and an optional Authorization header come from the script
-- arguments (wrk ... -- METHOD [ACCEPT [AUTHORIZATION]]); done()
-- prints one line "BENCHJSON {...}" with the totals and latency percentiles
-- (microseconds), which bench/run parses.

function init(args)
   if args[1] and args[1] ~= "" then
      wrk.method = args[1]
   end
   if args[2] and args[2] ~= "" then
      wrk.headers["Accept"] = args[2]
   end
   if args[3] and args[3] ~= "" then
      wrk.headers["Authorization"] = args[3]
   end
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCHJSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
      '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
      '"latency_us": {"mean": %.1f, "max": %d, "p50": %d, "p90": %d, "p99": %d}}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency.mean, latency.max, latency:percentile(50), latency:percentile(90),
      latency:percentile(99)))
end
