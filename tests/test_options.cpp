// offload-run's and offload-serve's flags as data (apps/common/options.hpp): every row is the
// flag it names, the report's names resolve, and each tool registers its roles' rows only.
#include "apps/common/options.hpp"

#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <vector>

using namespace offload::app;

namespace {
void parse(CLI::App& app, std::vector<std::string> args) {
  std::vector<const char*> argv{"test"};
  for (const auto& a : args) argv.push_back(a.c_str());
  app.parse(int(argv.size()), argv.data());
}
}  // namespace

TEST_CASE("each flag row registers the flag it names, with a setting and a report value where it has a name") {
  options o;
  CLI::App app;
  add_options(app, o);
  std::set<std::string> flags, reported;
  for (const auto* rows : {&receiver_flags(), &run_flags()})
    for (const auto& r : *rows) {
      INFO(r.flag);
      CHECK(app.get_option_no_throw(std::string(r.flag)) != nullptr);
      CHECK_FALSE(r.setting.empty());
      CHECK(flags.insert(std::string(r.flag)).second);  // one row per flag
      CHECK(r.report.empty() == (r.value == nullptr));
      if (!r.report.empty()) CHECK(reported.insert(std::string(r.report)).second);  // one row per name
    }
  // Every flag offload-run has is a row (besides --help).
  for (const auto* opt : app.get_options())
    if (opt->get_name() != "--help") CHECK(flags.count(opt->get_name()) == 1);
}

TEST_CASE("offload-serve registers the receiver's rows only") {
  options o;
  CLI::App app;
  add_receiver_options(app, o);
  for (const auto& r : receiver_flags()) CHECK(app.get_option_no_throw(std::string(r.flag)) != nullptr);
  for (const auto& r : run_flags()) CHECK(app.get_option_no_throw(std::string(r.flag)) == nullptr);
}

TEST_CASE("the report's values come from the parsed flags") {
  options o;
  CLI::App app;
  add_options(app, o);
  CHECK(report_value(o, "deadlines") == true);
  parse(app, {"--no-deadlines", "--receivers", "3", "--events", "17", "--threads", "5", "--cpu-work", "emulated"});
  CHECK(report_value(o, "deadlines") == false);
  CHECK(report_value(o, "receivers") == 3);
  CHECK(report_value(o, "events_per_transmitter") == 17);
  CHECK(report_value(o, "fallback_threads") == 5);  // 0 given: as many as --threads
  CHECK(report_value(o, "cpu_work") == "EMULATED (held, not computed)");
  CHECK_THROWS_WITH(report_value(o, "no_such_setting"), Catch::Contains("'no_such_setting'"));
}
