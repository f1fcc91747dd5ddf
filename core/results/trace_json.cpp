#include "core/results/trace_json.hpp"

#include <algorithm>
#include <string>

namespace hpcinfer {

nlohmann::json chrome_trace(const std::vector<nlohmann::json>& reports) {
  using nlohmann::json;
  json events = json::array();
  json kept = json::array(), dropped = json::array(), shifts = json::array(), sync = json::array();
  // Each rank's engine start on rank 0's clock; the earliest is ts 0.
  std::vector<double> engine_start;
  for (const json& rep : reports) {
    const json& m = rep.at("metrics");
    engine_start.push_back(m.value("epoch_steady_s", 0.0) + m.value("clock_offset_s", 0.0));
  }
  const double base = engine_start.empty() ? 0.0 : *std::min_element(engine_start.begin(), engine_start.end());
  for (size_t k = 0; k < reports.size(); ++k) {
    const json& rep = reports[k];
    const double shift = engine_start[k] - base;
    const json& m = rep.at("metrics");
    const int rank = m.at("rank").get<int>();
    const std::string label = "rank " + std::to_string(rank) + " (pp " + std::to_string(m.value("pp_rank", 0)) +
                              ", tp " + std::to_string(m.value("tp_rank", 0)) + ") " + m.value("host", "");
    events.push_back({{"name", "process_name"}, {"ph", "M"}, {"pid", rank}, {"tid", 0}, {"args", {{"name", label}}}});
    events.push_back({{"name", "process_sort_index"}, {"ph", "M"}, {"pid", rank}, {"tid", 0},
                      {"args", {{"sort_index", rank}}}});
    events.push_back({{"name", "thread_name"}, {"ph", "M"}, {"pid", rank}, {"tid", 0}, {"args", {{"name", "engine"}}}});
    const json& spans = rep.value("spans", json::array());
    for (const json& s : spans) {
      const std::string name = s.at(0).get<std::string>();
      const double start = s.at(1).get<double>(), end = s.at(2).get<double>();
      json args = json::object();
      if (s.at(3).get<int>() >= 0) args["group"] = s.at(3);
      if (s.at(4).get<int>() >= 0) args["tokens"] = s.at(4);
      if (s.size() > 5 && s.at(5).get<double>() > 0) args["tp_allreduce_us"] = s.at(5).get<double>() * 1e6;
      events.push_back({{"name", name},
                        {"cat", (name == "send" || name == "recv_wait") ? "comm" : "compute"},
                        {"ph", "X"},
                        {"pid", rank},
                        {"tid", 0},
                        {"ts", (shift + start) * 1e6},
                        {"dur", (end - start) * 1e6},
                        {"args", args}});
    }
    kept.push_back(spans.size());
    shifts.push_back(shift * 1e6);
    sync.push_back(m.value("clock_sync", "shared"));
    dropped.push_back(rep.value("spans_dropped", 0));
  }
  return {{"traceEvents", events},
          {"displayTimeUnit", "ms"},
          {"otherData",
           {{"epoch", "the earliest engine start of any rank, on rank 0's steady clock (ts 0)"},
            {"rank_start_us", shifts},
            {"clock_sync_per_rank", sync},
            {"spans_kept_per_rank", kept},
            {"spans_dropped_per_rank", dropped}}}};
}

}  // namespace hpcinfer
