// trace.json: every rank's engine spans on one timeline, in the Chrome trace-event JSON format ("traceEvents", read
// by chrome://tracing, https://ui.perfetto.dev and Speedscope). One process per rank (pid = world rank, named
// "rank R (pp P, tp T) HOST"), one thread (the engine); each span is a complete event (ph "X") with ts and dur in
// microseconds. A span's times are relative to its rank's engine start (span_log.hpp); the engine starts are put on
// rank 0's steady clock with the measured offsets (metrics epoch_steady_s + clock_offset_s, clock_sync.hpp), and the
// earliest is ts 0. otherData.rank_start_us gives each rank's start on that timeline.
// Categories: "compute" (compute = embedding + layers, head = head + sampling) and "comm" (send, recv_wait). Under
// tensor parallelism a compute span's args.tp_allreduce_us is the time of its all-reduces (two per layer; summed
// into the span rather than a span each, which keeps the span count at one per forward pass).
// otherData says how many spans each rank kept and dropped (SpanLog's cap).
#pragma once

#include <nlohmann/json.hpp>
#include <vector>

namespace hpcinfer {

// reports[r]: rank r's report (results_bundle.hpp): "metrics" (rank, host, pp_rank, tp_rank), "spans" as
// [[name, start_s, end_s, group, tokens, allreduce_s], ...] and "spans_dropped".
nlohmann::json chrome_trace(const std::vector<nlohmann::json>& reports);

}  // namespace hpcinfer
