-- wrk script: cycles through a corpus of pre-signed EventSub notifications (bench/lib/corpus.mjs), each
-- wrk thread through its own disjoint share, so that no message id is sent twice unless a thread wraps
-- around (reported as "wrapped": such a run is void).
-- Arguments after `--`: CORPUS THREADS [RATE [LIMIT]] (RATE: used by cycle-paced.lua only, 0 here)
--   CORPUS: complete HTTP requests, each preceded by its length in 8 decimal digits
--   LIMIT: read only the first LIMIT requests of the corpus (its start-up time grows with the corpus)
-- done() prints one line, `BENCH_JSON {...}`, with the summary the benchmark reads.

local counter = 0
local threads = {}

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local path, nthreads = args[1], tonumber(args[2])
  nthreads_paced = nthreads
  mean_delay = tonumber(args[3]) or 0
  local limit = tonumber(args[4]) or math.huge
  reqs = {}
  -- The corpus stays live until the end: collecting while it is read only costs time.
  collectgarbage("stop")
  local f = assert(io.open(path, "rb"))
  local i = 0
  while i < limit do
    local len = f:read(8)
    if not len then break end
    local req = f:read(tonumber(len))
    if i % nthreads == tid then reqs[#reqs + 1] = req end
    i = i + 1
  end
  f:close()
  n = #reqs
  sent = 0
  collectgarbage("restart")
end

function request()
  sent = sent + 1
  return reqs[((sent - 1) % n) + 1]
end

function done(summary, latency, requests)
  local sent_total, wrapped = 0, 0
  for _, t in ipairs(threads) do
    local s, size = t:get("sent") or 0, t:get("n") or 0
    sent_total = sent_total + s
    if s > size then wrapped = wrapped + 1 end
  end
  local e = summary.errors
  io.write(string.format(
    '\nBENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,"status":%d,' ..
    '"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d,"mean_us":%.1f,"sent":%d,"wrapped":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max, latency.mean, sent_total, wrapped))
end
