#pragma once
// Speaking the protocol by hand, for test ranks that play a misbehaving peer: blocking sends
// and receives of whole messages on the runtime's communicator and mpi-offload's tag.
#include <offload/mpi.hpp>
#include <offload/runtime.hpp>
#include <offload/wire.hpp>

#include "src/transport/mpi_endpoint.hpp"

#include <cstring>
#include <stdexcept>

namespace offload_test {

inline void raw_send(offload::runtime& rt, int dest, const offload::buffer& bytes) {
  rt.call([&] {
    MPI_Send(bytes.data(), int(bytes.size()), MPI_BYTE, dest, offload::detail::offload_tag, offload::comm_of(rt));
  });
}

/// The next message from `source`, decoded; throws when it is malformed.
inline offload::message raw_receive(offload::runtime& rt, int source) {
  return rt.call([&] {
    MPI_Status st;
    MPI_Probe(source, offload::detail::offload_tag, offload::comm_of(rt), &st);
    int n = 0;
    MPI_Get_count(&st, MPI_BYTE, &n);
    offload::buffer in(static_cast<std::size_t>(n));
    MPI_Recv(in.data(), n, MPI_BYTE, source, offload::detail::offload_tag, offload::comm_of(rt), MPI_STATUS_IGNORE);
    if (const auto head = offload::peek_head(in.span()); head && head->parts > 0) {
      // A head: lay the message out by its table and receive each part into place
      // (docs/protocol.md section 1), as written there, not as the library does it.
      offload::buffer whole(static_cast<std::size_t>(head->total_size));
      std::memcpy(whole.data(), in.data(), in.size());
      const auto layout = offload::decode(whole.span());
      if (!layout)
        throw std::runtime_error("rank " + std::to_string(source) + " sent a bad head: " + layout.error().text);
      for (const auto& p : layout.value().products) {
        if (p.size_bytes() == 0) continue;
        auto* at = whole.data() + (p.data - whole.data());
        MPI_Recv(at, int(p.size_bytes()), MPI_BYTE, source, offload::detail::part_tag, offload::comm_of(rt),
                 MPI_STATUS_IGNORE);
      }
      in = std::move(whole);
    }
    auto m = offload::message::from(std::move(in));
    if (!m) throw std::runtime_error("rank " + std::to_string(source) + " sent a malformed message: " + m.error().text);
    return std::move(m.value());
  });
}

}  // namespace offload_test
