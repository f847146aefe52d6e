#pragma once
// The harnesses' promise check: a broken promise aborts, which libFuzzer reports as a crash
// and saves the input.
#include <cstdio>
#include <cstdlib>

namespace offload_fuzz {

inline void require(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "broken promise: %s\n", what);
  std::abort();
}

}  // namespace offload_fuzz
