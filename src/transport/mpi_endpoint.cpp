#include "mpi_endpoint.hpp"

#include "src/base/clock.hpp"
#include "src/runtime/mpi_check.hpp"

#include <offload/wire.hpp>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <limits>
#include <mutex>
#include <new>
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
  // Buffers MPI still owns must not be freed under it.
  auto& g = the_graveyard();
  std::lock_guard lock(g.mutex);
  for (auto& r : m_receiving) g.buffers.push_back(std::move(r.in.bytes));
  for (auto& b : m_receive_dropped) g.buffers.push_back(std::move(b));
  for (auto* list : {&m_pending, &m_abandoned})
    for (auto& p : *list) {
      if (p.m.storage.size() > 0) g.buffers.push_back(std::move(p.m.storage));
      if (p.m.keep_alive) g.others.push_back(std::move(p.m.keep_alive));
    }
}

namespace {
/// The size of a probed message in bytes, 2 GiB and more included (MPI_Get_count would say
/// MPI_UNDEFINED there: its count is an int).
MPI_Count probed_bytes(const MPI_Status& st) {
  MPI_Count count = 0;
  OFFLOAD_MPI_CHECK(MPI_Get_elements_x(&st, MPI_BYTE, &count));
  if (count < 0) throw mpi_error("MPI_Get_elements_x gave no size for a probed message");
  return count;
}

constexpr MPI_Count int_max = std::numeric_limits<int>::max();

constexpr MPI_Count block = MPI_Count{1} << 20;
/// The gap between the 1 MiB blocks of a receive into a buffer to be dropped. Such a datatype
/// is not contiguous, so Open MPI's ob1 cannot read the message with one single-copy get
/// (shared memory: one process_vm_readv of the whole message inside one MPI call, which held
/// this progress thread, and every other peer's replies, for the 3 s that 2 GiB took here): it
/// falls back to its copy-in/out protocol, fragment by fragment across MPI calls.
constexpr MPI_Count discard_gap = 64;

/// The bytes a receive of `count` bytes into 1 MiB blocks `gap` bytes apart spans.
MPI_Count spanned(MPI_Count count, MPI_Count gap) {
  return count / block * (block + gap) + count % block;
}

/// A committed datatype of exactly `count` bytes, one element of which sends or receives
/// them: 1 MiB blocks `gap` bytes apart, then the rest. For counts of 2 GiB and more (one
/// MPI_BYTE count is an int) and for receives into buffers to be dropped. The caller frees it
/// (MPI_Type_free), which it may do while a send or receive that uses it runs.
MPI_Datatype bytes_type(MPI_Count count, MPI_Count gap) {
  if (count / block > int_max) throw mpi_error("a message of " + std::to_string(count) + " bytes is too large for MPI");
  MPI_Datatype blocks = MPI_DATATYPE_NULL, whole = MPI_DATATYPE_NULL;
  OFFLOAD_MPI_CHECK(MPI_Type_create_hvector(static_cast<int>(count / block), static_cast<int>(block),
                                            static_cast<MPI_Aint>(block + gap), MPI_BYTE, &blocks));
  int lengths[2] = {1, static_cast<int>(count % block)};
  MPI_Aint displacements[2] = {0, static_cast<MPI_Aint>(count / block * (block + gap))};
  MPI_Datatype types[2] = {blocks, MPI_BYTE};
  const int rc = MPI_Type_create_struct(2, lengths, displacements, types, &whole);
  OFFLOAD_MPI_CHECK(MPI_Type_free(&blocks));
  OFFLOAD_MPI_CHECK(rc);
  OFFLOAD_MPI_CHECK(MPI_Type_commit(&whole));
  return whole;
}

/// A buffer to receive `count` bytes into and drop (see discard_gap), or an empty one when
/// the memory cannot be had.
buffer discard_buffer(MPI_Count count) noexcept {
  try {
    return buffer(static_cast<std::size_t>(spanned(count, discard_gap)));
  } catch (const std::bad_alloc&) {
    return {};
  }
}
}  // namespace

bool mpi_endpoint::may_discard(std::uint64_t bytes) const noexcept {
  return m_discarding == 0 ||
         m_discarding + static_cast<std::uint64_t>(spanned(static_cast<MPI_Count>(bytes), discard_gap)) <=
             m_max_receive;
}

std::optional<incoming> mpi_endpoint::receive() {
  // Oversized messages waiting (in match order) start once the discards before them are in
  // and freed, so that one is held at a time.
  for (auto& r : m_receiving)
    if (!r.started) {
      if (!may_discard(r.in.size)) break;
      start_oversized(r);
    }
  // Match everything that has arrived and start receiving it.
  while (m_receiving.size() < max_receiving) {
    int flag = 0;
    MPI_Message msg;
    MPI_Status st;
    OFFLOAD_MPI_CHECK(MPI_Improbe(MPI_ANY_SOURCE, offload_tag, m_comm, &flag, &msg, &st));
    if (!flag) break;
    const MPI_Count count = probed_bytes(st);
    incoming in;
    in.source = st.MPI_SOURCE;
    in.size = static_cast<std::uint64_t>(count);
    in.oversized = in.size > m_max_receive;
    // MPI cannot drop a matched message, and a truncating receive is not safe: Open MPI 4.1's
    // shared-memory single-copy path writes the whole message into the short buffer (measured:
    // a segfault). So an oversized one is received whole into a temporary buffer, freed as
    // soon as it is in (it never enters the pool or a queue), one at a time: a peer sending
    // many makes this endpoint hold one, not all.
    if (in.oversized) {
      auto& r = m_receiving.emplace_back(receiving{std::move(in), 1, false, msg});
      if (may_discard(r.in.size)) start_oversized(r);
      continue;
    }
    in.bytes = m_pool.acquire(static_cast<std::size_t>(count));
    auto& r = m_receiving.emplace_back(receiving{std::move(in)});
    if (r.in.size < m_blocking_below && count <= int_max && m_receiving.size() == 1) {
      // Small: its data is there (eager) or one local copy away; a blocking receive is cheaper.
      OFFLOAD_MPI_CHECK(MPI_Mrecv(r.in.bytes.data(), static_cast<int>(count), MPI_BYTE, &msg, MPI_STATUS_IGNORE));
      r.arrived = true;
      arrived(r);
      --r.pending;
      if (r.pending == 0) return take_ready();
      continue;
    }
    start_receive(msg, r.in.bytes.data(), count, &r);
  }
  match_parts();
  if (auto in = take_ready()) return in;
  if (!test_receives()) return std::nullopt;
  return take_ready();
}

void mpi_endpoint::start_receive(MPI_Message& msg, std::byte* into, MPI_Count count, receiving* owner, buffer dropped,
                                 bool to_drop) {
  MPI_Request request;
  if (count <= int_max && !to_drop) {
    OFFLOAD_MPI_CHECK(MPI_Imrecv(into, static_cast<int>(count), MPI_BYTE, &msg, &request));
  } else {
    MPI_Datatype type = bytes_type(count, to_drop ? discard_gap : 0);
    const int rc = MPI_Imrecv(into, 1, type, &msg, &request);
    OFFLOAD_MPI_CHECK(MPI_Type_free(&type));
    OFFLOAD_MPI_CHECK(rc);
  }
  m_receive_requests.push_back(request);
  m_receive_owners.push_back(owner);
  m_receive_dropped.push_back(std::move(dropped));
}

bool mpi_endpoint::test_receives() {
  // One MPI_Testsome over every receive still running (each MPI_Test would poll MPI again).
  if (m_receive_requests.empty()) return false;
  int outcount = 0;
  m_indices.resize(m_receive_requests.size());
  OFFLOAD_MPI_CHECK(MPI_Testsome(static_cast<int>(m_receive_requests.size()), m_receive_requests.data(), &outcount,
                                 m_indices.data(), MPI_STATUSES_IGNORE));
  if (outcount <= 0) return false;
  for (int k = 0; k < outcount; ++k) {
    receiving* r = m_receive_owners[static_cast<std::size_t>(m_indices[static_cast<std::size_t>(k)])];
    if (r == nullptr) continue;  // a dropped part: its buffer goes below
    if (!r->arrived) {           // the message (or head) itself: its parts are wanted only after it is in
      r->arrived = true;
      arrived(*r);
    }
    --r->pending;
  }
  // Completed requests are MPI_REQUEST_NULL now: compact the three lists (dropped parts'
  // buffers are freed here).
  std::size_t w = 0;
  for (std::size_t i = 0; i < m_receive_requests.size(); ++i) {
    if (m_receive_requests[i] == MPI_REQUEST_NULL) {
      m_discarding -= m_receive_dropped[i].size();
      m_receive_dropped[i] = buffer{};
      continue;
    }
    m_receive_requests[w] = m_receive_requests[i];
    m_receive_owners[w] = m_receive_owners[i];
    m_receive_dropped[w] = std::move(m_receive_dropped[i]);
    ++w;
  }
  m_receive_requests.resize(w);
  m_receive_owners.resize(w);
  m_receive_dropped.resize(w);
  return true;
}

std::optional<incoming> mpi_endpoint::take_ready() {
  // The first completed receive whose source has no earlier receive in progress.
  std::vector<int> waiting;  // sources with an earlier receive in progress
  for (auto it = m_receiving.begin(); it != m_receiving.end(); ++it) {
    if (std::find(waiting.begin(), waiting.end(), it->in.source) != waiting.end()) continue;
    if (it->pending > 0 || !it->started) {
      waiting.push_back(it->in.source);
      continue;
    }
    incoming out = std::move(it->in);
    m_receiving.erase(it);
    return out;
  }
  return std::nullopt;
}

void mpi_endpoint::start_oversized(receiving& r) {
  r.started = true;
  r.in.bytes = discard_buffer(static_cast<MPI_Count>(r.in.size));
  if (r.in.bytes.empty() && r.in.size > 0) {
    // No memory for it: it stays in MPI, never received (its sender's send never completes),
    // and comes back oversized without its header (request id 0).
    m_unreceived.push_back(r.message);
    r.message = MPI_MESSAGE_NULL;
    r.arrived = true;
    r.pending = 0;
    return;
  }
  r.discarding = true;
  m_discarding += r.in.bytes.size();
  start_receive(r.message, r.in.bytes.data(), static_cast<MPI_Count>(r.in.size), &r, {}, true);
}

void mpi_endpoint::arrived(receiving& r) {
  const auto head = peek_head(r.in.bytes.span());
  if (r.in.oversized) {
    if (!r.discarding) return;
    // Only its header is kept (for the request id; it lies in the first block); the rest goes
    // at once. Should it be the head of a message in parts, its parts are dropped too, keeping
    // the source's order.
    m_discarding -= r.in.bytes.size();
    const std::size_t keep = std::min(static_cast<std::size_t>(r.in.size), wire_header_size);
    buffer header(keep);
    std::memcpy(header.data(), r.in.bytes.data(), keep);
    r.in.bytes = std::move(header);
    r.discarding = false;
    if (head && head->parts > 0) want_dropped(r.in.source, head->parts);
    return;
  }
  if (!head || head->parts == 0) return;  // a whole message
  // A head: its payloads follow as parts. Each goes straight into its place in one buffer,
  // laid out by the head's own table, which is checked first; a head that cannot be used has
  // its parts received and dropped, and comes back broken (or oversized).
  const int source = r.in.source;
  const std::uint64_t head_bytes = r.in.size;
  if (head->total_size > m_max_receive) {
    r.in.oversized = true;
    r.in.size = head->total_size;
    want_dropped(source, head->parts);
    return;
  }
  auto broken = [&](const std::string& why) {
    r.in.broken = "message in " + std::to_string(head->parts) + " part(s) after a head of " +
                  std::to_string(head_bytes) + " bytes: " + why;
    want_dropped(source, head->parts);
  };
  if (head->total_size < head_bytes) return broken("header field total_size is smaller than the head");
  buffer whole = m_pool.acquire(static_cast<std::size_t>(head->total_size));
  std::memcpy(whole.data(), r.in.bytes.data(), static_cast<std::size_t>(head_bytes));
  // The layout's checks only; the caller decodes against its own limits.
  const wire_limits layout{m_max_receive, std::numeric_limits<std::uint32_t>::max(), 0xffff};
  auto decoded = decode(whole.span(), layout);
  if (!decoded) return broken(decoded.error().text + " (" + std::string(to_string(decoded.error().code)) + ")");
  // Names must be in the head, and parts must not write over it.
  const std::byte* head_end = whole.data() + head_bytes;
  for (const auto& p : decoded.value().products) {
    if (reinterpret_cast<const std::byte*>(p.name.data() + p.name.size()) > head_end)
      return broken("product names run past the head");
    if (p.size_bytes() > 0 && p.data < head_end)
      return broken("payload '" + std::string(p.name) + "' overlaps the head");
  }
  auto& wanted = m_wanted[source];
  for (const auto& p : decoded.value().products) {
    if (p.size_bytes() == 0) continue;
    wanted.push_back({&r, static_cast<std::uint64_t>(p.data - whole.data()), p.size_bytes()});
    ++r.pending;
  }
  r.in.bytes = std::move(whole);
  r.in.size = head->total_size;
}

void mpi_endpoint::want_dropped(int source, std::uint32_t parts) {
  if (parts == 0) return;
  auto& wanted = m_wanted[source];
  if (!wanted.empty() && wanted.back().drop > 0)
    wanted.back().drop += parts;
  else
    wanted.push_back({nullptr, 0, 0, parts});
}

void mpi_endpoint::match_parts() {
  for (auto it = m_wanted.begin(); it != m_wanted.end();) {
    const int source = it->first;
    auto& wanted = it->second;
    while (!wanted.empty()) {
      // Probed first, matched once it may start: a part to drop waits (in MPI) while the
      // discards running would take it over the bound (see receive()).
      int flag = 0;
      MPI_Status st;
      OFFLOAD_MPI_CHECK(MPI_Iprobe(source, part_tag, m_comm, &flag, &st));
      if (!flag) break;
      const wanted_part w = wanted.front();
      auto fits = [&](MPI_Count bytes) {
        return w.drop == 0 && w.into->in.broken.empty() && static_cast<std::uint64_t>(bytes) == w.size;
      };
      if (const MPI_Count bytes = probed_bytes(st); !fits(bytes) && !may_discard(static_cast<std::uint64_t>(bytes)))
        break;
      MPI_Message msg;
      OFFLOAD_MPI_CHECK(MPI_Improbe(source, part_tag, m_comm, &flag, &msg, &st));
      if (!flag) break;  // (only this thread receives parts from `source`: the probed one is there)
      const MPI_Count count = probed_bytes(st);
      if (w.drop > 1)
        --wanted.front().drop;
      else
        wanted.pop_front();
      receiving* owner = w.drop > 0 ? nullptr : w.into;
      if (fits(count)) {
        start_receive(msg, w.into->in.bytes.data() + w.offset, count, w.into);
        continue;
      }
      // Dropped: received whole into a buffer of its own (MPI cannot drop a matched message).
      if (owner != nullptr && owner->in.broken.empty())
        owner->in.broken = "a part of " + std::to_string(count) + " bytes came for a payload of " +
                           std::to_string(w.size) + " bytes at offset " + std::to_string(w.offset);
      buffer dropped = discard_buffer(count);
      if (dropped.empty() && count > 0) {
        // No memory for it: left in MPI, never received (see start_oversized).
        m_unreceived.push_back(msg);
        if (owner != nullptr) --owner->pending;
        continue;
      }
      m_discarding += dropped.size();
      std::byte* into = dropped.data();
      start_receive(msg, into, count, owner, std::move(dropped), true);
    }
    it = wanted.empty() ? m_wanted.erase(it) : std::next(it);
  }
}

void mpi_endpoint::post(outgoing o) {
  if (o.m.contiguous()) {
    const auto head = o.m.head;
    post_one(std::move(o), head.data(), head.size(), offload_tag);
    return;
  }
  if (o.m.total_size < m_parts_from) {
    // Small: one copy costs less than a message per payload.
    buffer whole = m_pool.acquire(static_cast<std::size_t>(o.m.total_size));
    o.m.flatten(whole.span());
    post({o.dest, outgoing_message::whole(std::move(whole))});
    return;
  }
  // The head (in its storage: written here), then each payload with bytes from where it lies;
  // all hold the message alive.
  write_parts(o.m.storage.span().first(o.m.head.size()), o.m.part_count());
  const int dest = o.dest;
  const auto held = std::make_shared<outgoing_message>(std::move(o.m));
  const auto holder = [&] {
    outgoing h{dest, {}};
    h.m.keep_alive = held;
    return h;
  };
  post_one(holder(), held->head.data(), held->head.size(), offload_tag);
  for (const auto& [offset, bytes] : held->payloads)
    if (!bytes.empty()) post_one(holder(), bytes.data(), bytes.size(), part_tag);
}

void mpi_endpoint::post_one(outgoing o, const std::byte* data, std::size_t size, int tag) {
  MPI_Request req;
  if (static_cast<MPI_Count>(size) <= int_max) {
    OFFLOAD_MPI_CHECK(MPI_Isend(data, static_cast<int>(size), MPI_BYTE, o.dest, tag, m_comm, &req));
  } else {  // (a reply whose outputs a peer's inputs made that large, say)
    MPI_Datatype type = bytes_type(static_cast<MPI_Count>(size), 0);
    const int rc = MPI_Isend(data, 1, type, o.dest, tag, m_comm, &req);
    OFFLOAD_MPI_CHECK(MPI_Type_free(&type));
    OFFLOAD_MPI_CHECK(rc);
  }
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
