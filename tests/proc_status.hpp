#pragma once
// A process's memory as Linux reports it, for tests that check a receiver's memory from outside.
#include <fstream>
#include <stdexcept>
#include <string>

namespace offload_test {

/// The value of `key` ("VmRSS:", "VmHWM:") in /proc/PID/status, in KiB; throws when absent.
inline long status_kib(long pid, const std::string& key) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string k;
  while (f >> k) {
    if (k == key) {
      long value = 0;
      f >> value;
      return value;
    }
    f.ignore(1 << 20, '\n');
  }
  throw std::runtime_error("cannot read " + key + " of process " + std::to_string(pid));
}

}  // namespace offload_test
