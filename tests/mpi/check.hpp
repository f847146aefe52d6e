#pragma once
// A minimal check macro for the MPI test programs (Catch2 does not run under several ranks).
#include <cstdio>

namespace offload_test {
inline int failures = 0;
}

#define EXPECT(cond, ...)                                                           \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      ++offload_test::failures;                                                     \
      std::fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
      std::fprintf(stderr, __VA_ARGS__);                                            \
      std::fprintf(stderr, "\n");                                                   \
    }                                                                               \
  } while (false)
