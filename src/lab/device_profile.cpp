#include <offload/device_profile.hpp>

#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace offload {
namespace {

using json = nlohmann::json;

struct reader {
  std::string origin;
  [[noreturn]] void fail(const std::string& field, const std::string& what) const {
    throw std::invalid_argument("device profile " + origin + ": " + field + ": " + what);
  }
  const json& at(const json& j, const std::string& parent, const std::string& key) const {
    if (!j.is_object() || !j.contains(key)) fail(parent.empty() ? key : parent + "." + key, "missing");
    return j.at(key);
  }
  std::string text(const json& j, const std::string& parent, const std::string& key) const {
    const auto& v = at(j, parent, key);
    if (!v.is_string() || v.get<std::string>().empty()) fail(parent + "." + key, "must be a non-empty string");
    return v.get<std::string>();
  }
  double number(const json& v, const std::string& field, bool positive) const {
    if (!v.is_number()) fail(field, "must be a number, is " + v.dump());
    const double x = v.get<double>();
    if (!std::isfinite(x) || x < 0 || (positive && x == 0))
      fail(field, "is " + v.dump() + "; it must be " + (positive ? "positive" : "zero or positive"));
    return x;
  }
  double number(const json& j, const std::string& parent, const std::string& key, bool positive) const {
    return number(at(j, parent, key), parent + "." + key, positive);
  }
};

}  // namespace

double model_timing::time_ms(double items) const {
  if (table.size() == 1 || items <= table.front().first) return table.front().second;
  std::size_t i = 1;
  while (i + 1 < table.size() && table[i].first < items) ++i;
  const auto [b0, t0] = table[i - 1];
  const auto [b1, t1] = table[i];
  return t0 + (t1 - t0) * (items - b0) / (b1 - b0);
}

const model_timing* device_profile::find(std::string_view name) const noexcept {
  for (const auto& m : models)
    if (m.name == name) return &m;
  return nullptr;
}

std::string device_profile::model_names() const {
  std::string out;
  for (const auto& m : models) out += (out.empty() ? "" : ", ") + m.name;
  return out;
}

double device_profile::batch_seconds(const model_timing& m, double items, double bytes_in, double bytes_out) const {
  double s = m.time_ms(items) * 1e-3;
  if (!copies_in_tables) {
    s += 2 * copy_latency_us * 1e-6;
    if (copy_gbytes_per_s > 0) s += (bytes_in + bytes_out) / (copy_gbytes_per_s * 1e9);
  }
  return s * time_scale;
}

device_profile parse_device_profile(const std::string& text, const std::string& origin) {
  const reader r{origin};
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    throw std::invalid_argument("device profile " + origin + ": not valid JSON: " + e.what());
  }
  if (!j.is_object()) r.fail("(top level)", "must be a JSON object");
  device_profile p;
  p.path = origin;
  p.device = r.text(j, "", "device");
  p.source = r.text(j, "", "source");
  const auto& c = r.at(j, "", "concurrency");
  const double conc = r.number(c, "concurrency", "value", true);
  if (conc != std::floor(conc) || conc > 1024) r.fail("concurrency.value", "must be a whole number 1..1024");
  p.concurrency = std::uint32_t(conc);
  p.concurrency_source = r.text(c, "concurrency", "source");
  const auto& h = r.at(j, "", "host_device");
  p.copy_gbytes_per_s = r.number(h, "host_device", "bandwidth_gbytes_per_s", true);
  p.copy_latency_us = r.number(h, "host_device", "latency_us", false);
  const auto& inc = r.at(h, "host_device", "included_in_tables");
  if (!inc.is_boolean()) r.fail("host_device.included_in_tables", "must be true or false");
  p.copies_in_tables = inc.get<bool>();
  p.copy_source = r.text(h, "host_device", "source");
  const auto& models = r.at(j, "", "models");
  if (!models.is_object() || models.empty()) r.fail("models", "must be an object with at least one model");
  for (const auto& [name, m] : models.items()) {
    const std::string where = "models." + name;
    model_timing t;
    t.name = name;
    t.source = r.text(m, where, "source");
    const auto& rows = r.at(m, where, "table");
    if (!rows.is_array() || rows.empty()) r.fail(where + ".table", "must be a non-empty array of [batch, ms] rows");
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const std::string row = where + ".table[" + std::to_string(i) + "]";
      if (!rows[i].is_array() || rows[i].size() != 2) r.fail(row, "must be [batch, ms]");
      const double b = r.number(rows[i][0], row + " batch", true);
      const double ms = r.number(rows[i][1], row + " ms", true);
      if (!t.table.empty() && b <= t.table.back().first)
        r.fail(row, "batch " + rows[i][0].dump() + " does not follow the previous row's; batches must increase");
      if (!t.table.empty() && ms < t.table.back().second)
        r.fail(row, "time " + rows[i][1].dump() +
                        " ms is less than the previous (smaller) batch's; times must not "
                        "decrease with the batch size");
      t.table.emplace_back(b, ms);
    }
    // Least-squares line through the rows.
    double n = 0, sb = 0, st = 0, sbb = 0, sbt = 0;
    for (const auto& [b, ms] : t.table) {
      n += 1;
      sb += b;
      st += ms;
      sbb += b * b;
      sbt += b * ms;
    }
    const double den = n * sbb - sb * sb;
    t.fit_ms_per_item = den > 0 ? (n * sbt - sb * st) / den : 0;
    t.fit_t0_ms = (st - t.fit_ms_per_item * sb) / n;
    p.models.push_back(std::move(t));
  }
  return p;
}

device_profile load_device_profile(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::invalid_argument("device profile " + path + ": cannot be read");
  std::stringstream text;
  text << in.rdbuf();
  return parse_device_profile(text.str(), path);
}

}  // namespace offload
