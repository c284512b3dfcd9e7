-- cycle.lua at a constant rate: each answer's connection is given the next free send slot of a fixed
-- schedule (RATE requests per second in all, shared by the threads), so requests leave at that rate
-- whatever the latency, as long as a connection is free (as wrk2 does; the third argument is RATE
-- instead of a think time). Slots are never caught up after a stall: a late slot moves the schedule on.
-- wrk measures latency from the write of a request, so the wait for a slot is not counted.
dofile(debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "cycle.lua")

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clk_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
local CLOCK_MONOTONIC = 1

local function now_ms()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local next_slot = nil

function delay()
  local now = now_ms()
  -- mean_delay (cycle.lua's third argument) holds RATE here; each thread keeps its share of it.
  local interval = 1000 * nthreads_paced / mean_delay
  if next_slot == nil or next_slot < now then next_slot = now end
  next_slot = next_slot + interval
  local d = next_slot - now
  local whole = math.floor(d)
  if math.random() < d - whole then whole = whole + 1 end
  return whole
end
