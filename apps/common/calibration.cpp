#include "calibration.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace offload::app {
namespace {

using json = nlohmann::ordered_json;

constexpr double min_byte_span = 65536;

/// Least squares y = a + b x, weighted by w (see fit_costs for when b is 0).
std::pair<double, double> fit_line(const std::vector<double>& x, const std::vector<double>& y,
                                   const std::vector<double>& w) {
  double sw = 0, sx = 0, sy = 0;
  const auto [lo, hi] = std::minmax_element(x.begin(), x.end());
  const bool spread = lo != x.end() && *hi - *lo >= min_byte_span;
  for (std::size_t i = 0; i < x.size(); ++i) {
    sw += w[i];
    sx += w[i] * x[i];
    sy += w[i] * y[i];
  }
  if (sw <= 0) return {0, 0};
  const double mx = sx / sw, my = sy / sw;
  double sxx = 0, sxy = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    sxx += w[i] * (x[i] - mx) * (x[i] - mx);
    sxy += w[i] * (x[i] - mx) * (y[i] - my);
  }
  double b = spread && sxx > 0 ? sxy / sxx : 0;
  if (b < 0) b = 0;
  return {std::max(0.0, my - b * mx), b};
}

double figure(const json& j, const char* key, const std::string& origin) {
  if (!j.contains(key) || !j.at(key).is_number())
    throw std::invalid_argument("calibration " + origin + ": " + key + ": missing or not a number");
  const double v = j.at(key).get<double>();
  if (!std::isfinite(v) || v < 0)
    throw std::invalid_argument("calibration " + origin + ": " + key + ": must be finite and >= 0");
  return v;
}

}  // namespace

library_costs fit_costs(const std::vector<calibration_point>& points, double one_way_latency_s,
                        double tx_progress_cores, std::string source) {
  library_costs c;
  c.source = std::move(source);
  std::vector<double> in, out, w, net_out, net_back;
  double queue = 0, total = 0, overhead = 0, emulated = 0;
  for (const auto& p : points) {
    if (p.requests <= 0) continue;
    if (p.device_s > 0) {
      overhead += std::max(0.0, p.kernel_s - p.device_s) * p.requests;
      emulated += p.requests;
    }
    in.push_back(p.bytes_in);
    out.push_back(p.bytes_out);
    w.push_back(p.requests);
    net_out.push_back(p.net_out_s - one_way_latency_s);
    net_back.push_back(p.net_back_s - one_way_latency_s);
    queue += p.tx_queue_s * p.requests;
    total += p.requests;
  }
  c.tx_queue_s = total > 0 ? queue / total : 0;
  c.batch_overhead_s = emulated > 0 ? overhead / emulated : 0;
  std::tie(c.out_fixed_s, c.out_s_per_byte) = fit_line(in, net_out, w);
  std::tie(c.back_fixed_s, c.back_s_per_byte) = fit_line(out, net_back, w);
  c.tx_progress_cores = tx_progress_cores;
  return c;
}

std::string calibration_json(const library_costs& c, const std::vector<calibration_point>& points,
                             const std::vector<std::pair<std::string, double>>& extra) {
  json pts = json::array();
  for (const auto& p : points)
    pts.push_back({{"module", p.module},
                   {"requests", p.requests},
                   {"bytes_in", p.bytes_in},
                   {"bytes_out", p.bytes_out},
                   {"tx_queue_p50_ms", 1e3 * p.tx_queue_s},
                   {"net_out_p50_ms", 1e3 * p.net_out_s},
                   {"net_back_p50_ms", 1e3 * p.net_back_s},
                   {"kernel_p50_ms", 1e3 * p.kernel_s},
                   {"device_ms", 1e3 * p.device_s}});
  json j{{"source", c.source},
         {"tx_queue_ms", 1e3 * c.tx_queue_s},
         {"out_fixed_ms", 1e3 * c.out_fixed_s},
         {"out_ms_per_mb", 1e9 * c.out_s_per_byte},
         {"back_fixed_ms", 1e3 * c.back_fixed_s},
         {"back_ms_per_mb", 1e9 * c.back_s_per_byte},
         {"batch_overhead_ms", 1e3 * c.batch_overhead_s},
         {"tx_progress_cores", c.tx_progress_cores}};
  json info = json::object();
  for (const auto& [k, v] : extra) info[k] = v;
  j["not_modelled"] = info;
  j["points"] = pts;
  return j.dump(1) + "\n";
}

library_costs parse_calibration(const std::string& text, const std::string& origin) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    throw std::invalid_argument("calibration " + origin + ": not JSON: " + e.what());
  }
  if (!j.is_object()) throw std::invalid_argument("calibration " + origin + ": not a JSON object");
  library_costs c;
  c.source = j.value("source", std::string("(no source given)"));
  c.tx_queue_s = 1e-3 * figure(j, "tx_queue_ms", origin);
  c.out_fixed_s = 1e-3 * figure(j, "out_fixed_ms", origin);
  c.out_s_per_byte = 1e-9 * figure(j, "out_ms_per_mb", origin);
  c.back_fixed_s = 1e-3 * figure(j, "back_fixed_ms", origin);
  c.back_s_per_byte = 1e-9 * figure(j, "back_ms_per_mb", origin);
  c.batch_overhead_s = 1e-3 * figure(j, "batch_overhead_ms", origin);
  c.tx_progress_cores = figure(j, "tx_progress_cores", origin);
  return c;
}

library_costs load_calibration(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::invalid_argument("calibration " + path + ": cannot be read");
  std::stringstream s;
  s << in.rdbuf();
  return parse_calibration(s.str(), path);
}

}  // namespace offload::app
