// What the wire format costs per message: lay out, fill and decode one 64 B product, 10^6 times, best of 7.
// Built against each side's tree (results/overhead.md, "shaped products"):
//   g++ -std=c++20 -O2 -I TREE/include encode_decode.cpp TREE/build-cpu/src/liboffload_wire.a \
//       TREE/build-cpu/src/liboffload_base.a -lspdlog -lfmt
#include <chrono>
#include <cstdio>
#include <cstring>
#include <offload/wire.hpp>
using namespace offload;
int main() {
  std::vector<product> in{product::make("payload", std::vector<std::uint8_t>(64, 7))};
  const product_views v(in);
  buffer store;
  std::uint64_t sink = 0;
  double best = 1e9;
  for (int rep = 0; rep < 7; ++rep) {
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 1000000; ++i) {
      std::vector<product_spec> specs;
      for (const auto& p : v) specs.push_back({std::string(p.name), p.type, p.count});
      message_writer w({message_kind::request, std::uint64_t(i), 1, status::ok}, specs, std::move(store));
      std::memcpy(w.payload(0).data(), in[0].bytes.data(), 64);
      buffer b = std::move(w).finish();
      auto d = decode(b.span());
      sink += d.value().products[0].count;
      store = std::move(b);
    }
    double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() / 1e6;
    best = std::min(best, ns);
  }
  std::printf("encode+decode of one 64 B product: %.1f ns (best of 7 x 1e6) %llu\n", best, (unsigned long long)sink);
}
