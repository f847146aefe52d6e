// Zero-copy sends, in-place replies and inline kernels, on real ranks. Run with 3 ranks:
// 0 the receiver, 1-2 transmitters.
//  - copying submit: the inputs are overwritten and freed as soon as submit returns (under ASan
//    a late read is an error; elsewhere it gives wrong outputs), results are right;
//  - sharing submit (shared_products): the caller drops its reference at once (the library
//    keeps the products alive: the owner is alive in the callback, gone after close), or holds
//    it (its bytes are unchanged afterwards: nothing writes over a caller's inputs);
//  - both give the same outputs as the CPU, small (one copied message) and large (head and
//    parts), with an empty product among them; in-place replies (echo, synthetic) are counted;
//  - a kernel that declares itself cheap but runs 300 ms: it runs inline once, is moved to the
//    kernel threads, and another transmitter's echo requests all finish while its next two
//    requests are still running (the bound: one such run).
#include <offload/receiver.hpp>
#include <offload/runtime.hpp>
#include <offload/transmitter.hpp>

#include "finish.hpp"
#include "transport.hpp"

#include <atomic>
#include <chrono>
#include <cstring>
#include <future>
#include <mutex>

using namespace offload;

namespace {

/// Declares itself cheap, then runs 300 ms: what the receiver must not let stall the others.
class slow_cheap final : public kernel {
 public:
  std::string_view name() const noexcept override { return "slow_cheap"; }
  std::string_view version() const noexcept override { return "1"; }
  std::uint64_t default_size() const noexcept override { return 8; }
  std::vector<product_spec> output_specs(const product_views& in) const override {
    return {{"out", dtype::u8, in.at("in").count}};
  }
  void run_cpu(const product_views& in, message_writer& out) const override {
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
    std::uint64_t spins = 0;
    while (std::chrono::steady_clock::now() < until) ++spins;  // busy: a kernel that runs long
    const auto bytes = in.at("in").size_bytes();
    if (bytes > 0) std::memcpy(out.payload(0).data(), in.at("in").data, bytes);
  }
  std::vector<product> make_inputs(const input_params& p) const override {
    return {product::make("in", std::vector<std::uint8_t>(p.size, 7))};
  }
  double cheap_ns_per_byte() const noexcept override { return 0.1; }
};

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

/// The cases: a kernel and its inputs.
std::vector<std::pair<std::string, std::vector<product>>> cases(const kernel_registry& kernels, std::uint64_t seed) {
  std::vector<std::pair<std::string, std::vector<product>>> c;
  c.emplace_back("echo", kernels.find("echo")->make_inputs({seed, 8, 0}));  // small: copied whole
  std::vector<product> several{product::make("big", std::vector<std::uint8_t>((1 << 20) + 3, 0x5a)),
                               product::make("none", std::vector<double>{}),
                               product::make("mid", std::vector<double>(10000, 2.5))};
  c.emplace_back("echo", std::move(several));  // large: head and two parts
  c.emplace_back("synthetic", kernels.find("synthetic")->make_inputs({seed, 70000, 3}));
  c.emplace_back("mlp", kernels.find("mlp")->make_inputs({seed, 256, 0}));
  return c;
}

bool same_bytes(const std::vector<product>& a, const std::vector<product>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i].bytes != b[i].bytes) return false;
  return true;
}

void ownership(runtime& rt, const offload_test::transport& T, const kernel_registry& kernels) {
  auto tx = T.transmitter(rt, kernels, {0});
  struct pending {
    std::string kernel;
    std::vector<product> reference;
    std::future<result> copied;
    std::future<result> shared;
  };
  std::vector<pending> all;
  std::vector<std::weak_ptr<const void>> owners;
  std::atomic<int> dead_in_callback{0};
  std::vector<std::pair<std::shared_ptr<const std::vector<product>>, std::vector<product>>> held;
  for (int round = 0; round < 3; ++round)
    for (auto& [name, inputs] : cases(kernels, std::uint64_t(rt.rank() * 10 + round))) {
      pending p{name, inputs, {}, {}};
      // Copying: overwritten and freed right after submit returns.
      auto mine = std::make_unique<std::vector<product>>(inputs);
      p.copied = tx->submit(name, product_views(*mine));
      for (auto& q : *mine) std::fill(q.bytes.begin(), q.bytes.end(), std::byte{0xa5});
      mine.reset();
      // Sharing: in round 0 and 1 the caller lets go at once; in round 2 it holds them.
      auto shared = shared_products::adopt(inputs);
      owners.push_back(shared.owner);
      if (round == 2) held.emplace_back(std::static_pointer_cast<const std::vector<product>>(shared.owner), inputs);
      auto promise = std::make_shared<std::promise<result>>();
      p.shared = promise->get_future();
      std::weak_ptr<const void> watch = shared.owner;
      tx->submit(name, std::move(shared), [promise, watch, &dead_in_callback](result&& r) {
        if (watch.expired()) ++dead_in_callback;
        promise->set_value(std::move(r));
      });
      all.push_back(std::move(p));
    }
  for (auto& p : all) {
    const kernel& k = *kernels.find(p.kernel);
    const product_views ref(p.reference);
    result a = p.copied.get(), b = p.shared.get();
    EXPECT(a.ok() && a.receiver() == 0, "%s copied: %s (receiver %d)", p.kernel.c_str(), a.error().c_str(),
           a.receiver());
    EXPECT(b.ok() && b.receiver() == 0, "%s shared: %s (receiver %d)", p.kernel.c_str(), b.error().c_str(),
           b.receiver());
    if (!a.ok() || !b.ok()) continue;
    const auto da = compare_with_cpu(k, ref, a.products(), 1e-6, 1e-6);
    const auto db = compare_with_cpu(k, ref, b.products(), 1e-6, 1e-6);
    EXPECT(da.empty(), "%s copied differs from the CPU: %s", p.kernel.c_str(), da.c_str());
    EXPECT(db.empty(), "%s shared differs from the CPU: %s", p.kernel.c_str(), db.c_str());
    const auto ab = compare_products(a.products(), b.products());
    EXPECT(ab.empty(), "%s: copied and shared submits give different outputs: %s", p.kernel.c_str(), ab.c_str());
  }
  EXPECT(dead_in_callback == 0, "%d shared inputs were gone before their callback", dead_in_callback.load());
  for (const auto& [owner, pristine] : held)
    EXPECT(same_bytes(*owner, pristine), "a held input changed under its caller");
  held.clear();
  tx->close();
  std::size_t alive = 0;
  for (const auto& w : owners) alive += w.expired() ? 0 : 1;
  EXPECT(alive == 0, "the transmitter still holds %zu shared inputs after close", alive);
  const auto s = tx->stats();
  EXPECT(s.fallbacks == 0, "%llu fallbacks", static_cast<unsigned long long>(s.fallbacks));
}

}  // namespace

int main(int argc, char** argv) {
  offload_test::transport T(argc, argv);
  return offload_test::run_test(3, [&](runtime& rt) {
    static const slow_cheap liar;
    kernel_registry kernels = kernel_registry::builtin();
    kernels.add(liar);
    double a_last = 0, b_last = 0;
    if (rt.rank() == 0) {
      receiver_config cfg;
      cfg.backend = backend_kind::cpu;  // inline runs are for the CPU backend
      cfg.threads = 1;
      auto rx = T.receiver(rt, kernels, 4, cfg);
      T.exchange(rt, rx.get());
      rt.barrier();  // ownership done
      rt.barrier();  // the liar's requests submitted
      const auto s = rx->wait();
      std::printf("receiver: %llu requests, %llu inline, %llu moved off the progress thread, %llu in place\n",
                  static_cast<unsigned long long>(s.requests), static_cast<unsigned long long>(s.inline_runs),
                  static_cast<unsigned long long>(s.inline_demotions),
                  static_cast<unsigned long long>(s.in_place_replies));
      EXPECT(s.inline_demotions == 1, "%llu kernels moved off the progress thread, expected 1 (slow_cheap)",
             static_cast<unsigned long long>(s.inline_demotions));
      EXPECT(s.inline_runs >= 20, "only %llu requests ran inline", static_cast<unsigned long long>(s.inline_runs));
      EXPECT(s.in_place_replies >= 2 * 2 * 3 * 3, "only %llu in-place replies",
             static_cast<unsigned long long>(s.in_place_replies));
    } else {
      T.exchange(rt, nullptr);
      ownership(rt, T, kernels);
      rt.barrier();
      auto tx = T.transmitter(rt, kernels, {0});
      if (rt.rank() == 1) {
        std::vector<std::future<result>> slow;
        for (int i = 0; i < 3; ++i)
          slow.push_back(tx->submit("slow_cheap", product_views(liar.make_inputs({1, 8, 0}))));
        rt.barrier();
        for (auto& f : slow) {
          const result r = f.get();
          EXPECT(r.ok() && r.receiver() == 0, "slow_cheap: %s", r.error().c_str());
          a_last = now_s();
        }
      } else {
        rt.barrier();
        const auto& echo = *kernels.find("echo");
        double worst = 0;
        for (int i = 0; i < 20; ++i) {
          const auto in = echo.make_inputs({std::uint64_t(i), 64, 0});
          const result r = tx->submit("echo", product_views(in)).get();
          EXPECT(r.ok() && r.receiver() == 0, "echo: %s", r.error().c_str());
          worst = std::max(worst, r.latency());
        }
        b_last = now_s();
        std::printf("echo beside slow_cheap: slowest of 20 round trips %.1f ms\n", 1e3 * worst);
      }
      tx->close();
    }
    // Both transmitters share this node's steady clock.
    double mine[2] = {a_last, b_last}, all[6] = {};
    rt.call([&] { MPI_Allgather(mine, 2, MPI_DOUBLE, all, 2, MPI_DOUBLE, comm_of(rt)); });
    if (rt.rank() == 0) {
      const double a = all[2], b = all[5];
      std::printf("slow_cheap's last reply %.3f s after the echoes' last\n", a - b);
      EXPECT(b < a, "the echoes finished %.3f s after slow_cheap's last request: it stalled them", b - a);
    }
  });
}
