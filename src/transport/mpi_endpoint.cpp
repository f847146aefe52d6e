#include "mpi_endpoint.hpp"

#include "src/runtime/mpi_check.hpp"
#include "src/wire/clock.hpp"

#include <offload/wire.hpp>

#include <algorithm>
#include <chrono>
#include <limits>
#include <mutex>
#include <thread>

namespace offload::detail {

namespace {

/// Buffers of sends and receives that MPI may still use when their endpoint goes: kept for the
/// life of the process (reachable, so LeakSanitizer does not count them as leaks).
struct graveyard {
  std::mutex mutex;
  std::vector<buffer> buffers;
  std::vector<std::shared_ptr<const void>> others;
};
graveyard& the_graveyard() {
  static auto* g = new graveyard;  // never destroyed: MPI may write into these until exit
  return *g;
}

}  // namespace

mpi_endpoint::~mpi_endpoint() {
  // Buffers MPI still owns must not be freed under it. (Delayed sends MPI never saw are freed.)
  auto& g = the_graveyard();
  std::lock_guard lock(g.mutex);
  for (auto& r : m_receiving) g.buffers.push_back(std::move(r.in.bytes));
  for (auto* list : {&m_pending, &m_abandoned})
    for (auto& p : *list) {
      if (p.bytes.size() > 0) g.buffers.push_back(std::move(p.bytes));
      if (p.keep_alive) g.others.push_back(std::move(p.keep_alive));
    }
}

std::optional<incoming> mpi_endpoint::receive() {
  // The next oversized message waiting starts once the one before it is gone (the caller
  // dropped it before calling again), so that one is held at a time.
  if (!m_oversized_running)
    for (auto& r : m_receiving)
      if (!r.started) {
        start_oversized(r);
        break;
      }
  // Match everything that has arrived and start receiving it.
  while (m_receiving.size() < max_receiving) {
    int flag = 0;
    MPI_Message msg;
    MPI_Status st;
    OFFLOAD_MPI_CHECK(MPI_Improbe(MPI_ANY_SOURCE, offload_tag, m_comm, &flag, &msg, &st));
    if (!flag) break;
    MPI_Count count = 0;
    OFFLOAD_MPI_CHECK(MPI_Get_elements_x(&st, MPI_BYTE, &count));
    incoming in;
    in.source = st.MPI_SOURCE;
    in.size = static_cast<std::uint64_t>(count);
    in.oversized = in.size > m_max_receive;
    if (count > std::numeric_limits<int>::max())
      throw std::length_error("rank " + std::to_string(in.source) + " sent a message of " + std::to_string(in.size) +
                              " bytes; messages of 2 GiB and more cannot be received");
    // MPI cannot drop a matched message, and a truncating receive is not safe: Open MPI 4.1's
    // shared-memory single-copy path writes the whole message into the short buffer (measured:
    // a segfault). So an oversized one is received whole into a temporary buffer that the
    // caller discards at once (it never enters the pool or a queue), one at a time: a peer
    // sending many makes this endpoint hold one, not all.
    if (in.oversized) {
      m_receiving.push_back({MPI_REQUEST_NULL, std::move(in), false, false, msg});
      if (!m_oversized_running) start_oversized(m_receiving.back());
      continue;
    }
    in.bytes = m_pool.acquire(static_cast<std::size_t>(count));
    if (in.size < m_blocking_below && m_receiving.empty()) {
      // Small: its data is there (eager) or one local copy away; a blocking receive is cheaper.
      OFFLOAD_MPI_CHECK(MPI_Mrecv(in.bytes.data(), static_cast<int>(count), MPI_BYTE, &msg, MPI_STATUS_IGNORE));
      return in;
    }
    MPI_Request request;
    OFFLOAD_MPI_CHECK(MPI_Imrecv(in.bytes.data(), static_cast<int>(count), MPI_BYTE, &msg, &request));
    m_receiving.push_back({request, std::move(in)});
  }
  if (auto in = take_ready()) return in;
  // One MPI_Testsome over every receive still running (each MPI_Test would poll MPI again).
  m_test_requests.clear();
  m_test_slots.clear();
  for (std::size_t i = 0; i < m_receiving.size(); ++i) {
    if (m_receiving[i].done || !m_receiving[i].started) continue;
    m_test_requests.push_back(m_receiving[i].request);
    m_test_slots.push_back(i);
  }
  if (m_test_requests.empty()) return std::nullopt;
  int outcount = 0;
  m_indices.resize(m_test_requests.size());
  OFFLOAD_MPI_CHECK(MPI_Testsome(static_cast<int>(m_test_requests.size()), m_test_requests.data(), &outcount,
                                 m_indices.data(), MPI_STATUSES_IGNORE));
  if (outcount <= 0) return std::nullopt;
  for (int k = 0; k < outcount; ++k) {
    auto& r = m_receiving[m_test_slots[static_cast<std::size_t>(m_indices[static_cast<std::size_t>(k)])]];
    r.done = true;
    r.request = MPI_REQUEST_NULL;
  }
  return take_ready();
}

std::optional<incoming> mpi_endpoint::take_ready() {
  // The first completed receive whose source has no earlier receive still running.
  std::vector<int> waiting;  // sources with an earlier receive in progress
  for (auto it = m_receiving.begin(); it != m_receiving.end(); ++it) {
    if (std::find(waiting.begin(), waiting.end(), it->in.source) != waiting.end()) continue;
    if (!it->done) {
      waiting.push_back(it->in.source);
      continue;
    }
    incoming out = std::move(it->in);
    m_receiving.erase(it);
    if (out.oversized) m_oversized_running = false;  // the next starts at the next receive()
    return out;
  }
  return std::nullopt;
}

void mpi_endpoint::start_oversized(receiving& r) {
  r.in.bytes = buffer(static_cast<std::size_t>(r.in.size));
  OFFLOAD_MPI_CHECK(MPI_Imrecv(r.in.bytes.data(), static_cast<int>(r.in.size), MPI_BYTE, &r.message, &r.request));
  r.started = true;
  m_oversized_running = true;
}

void mpi_endpoint::post(outgoing o) {
  if (o.size > static_cast<std::size_t>(std::numeric_limits<int>::max()))
    throw std::length_error("message of " + std::to_string(o.size) + " bytes is too large for one MPI send");
  MPI_Request req;
  OFFLOAD_MPI_CHECK(MPI_Isend(o.data, static_cast<int>(o.size), MPI_BYTE, o.dest, offload_tag, m_comm, &req));
  m_requests.push_back(req);
  m_pending.push_back(std::move(o));
}

template <class Remove> std::size_t mpi_endpoint::remove_sends_if(Remove remove) {
  // Compacts the posted sends in place, keeping their order; remove(r) says whether slot r goes.
  std::size_t w = 0;
  for (std::size_t r = 0; r < m_requests.size(); ++r) {
    if (remove(r)) continue;
    if (w != r) {
      m_requests[w] = m_requests[r];
      m_pending[w] = std::move(m_pending[r]);
    }
    ++w;
  }
  const std::size_t removed = m_requests.size() - w;
  m_requests.resize(w);
  m_pending.resize(w);
  return removed;
}

bool mpi_endpoint::complete_sends() {
  if (m_requests.empty()) return false;
  int outcount = 0;
  m_indices.resize(m_requests.size());
  OFFLOAD_MPI_CHECK(MPI_Testsome(static_cast<int>(m_requests.size()), m_requests.data(), &outcount, m_indices.data(),
                                 MPI_STATUSES_IGNORE));
  if (outcount <= 0) return false;
  // Completed requests are MPI_REQUEST_NULL now; their buffers go back to the pool.
  remove_sends_if([&](std::size_t r) { return m_requests[r] == MPI_REQUEST_NULL; });
  return true;
}

std::size_t mpi_endpoint::abandon_posted(int dest) {
  return remove_sends_if([&](std::size_t r) {
    if (m_pending[r].dest != dest) return false;
    OFFLOAD_MPI_CHECK(MPI_Request_free(&m_requests[r]));
    m_abandoned.push_back(std::move(m_pending[r]));
    return true;
  });
}

}  // namespace offload::detail
