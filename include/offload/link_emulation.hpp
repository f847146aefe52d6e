#pragma once
/// \file
/// Emulated network distance, applied inside mpi-offload's transport: for measuring what a
/// remote GPU costs without a remote GPU. Every output that reports it says "emulated".

#include <chrono>

namespace offload {

/// Each message leaves its sender `latency` (plus a uniform draw in ±`jitter`, never below
/// zero) after it was handed over, and after every earlier message to the same rank (a link
/// stays FIFO, like TCP). With `bandwidth_bps` > 0 a link carries one message at a time at that
/// rate, so a message also waits for the ones before it to be "on the wire". Other links and
/// the receiving side are not held up: messages wait in a queue of the sending progress thread,
/// not in MPI. Configure both transmitter and receiver to delay both directions; a round trip
/// then gains twice `latency`.
struct link_emulation {
  std::chrono::nanoseconds latency{0};
  std::chrono::nanoseconds jitter{0};
  double bandwidth_bps = 0;  ///< 0: unlimited
  bool active() const noexcept { return latency.count() > 0 || jitter.count() > 0 || bandwidth_bps > 0; }
};

}  // namespace offload
