// CUDA against CPU for every kernel with a CUDA implementation, over fresh random inputs, with
// outputs poisoned before each CUDA run so that unwritten elements show. Exits 77 (skipped)
// without a usable GPU. The built-ins must all have one; `--plugin PATH` adds a plugin's kernels.
#include <offload/host_pool.hpp>
#include <offload/kernel.hpp>
#include <offload/plugin.hpp>

#include "kernels/cuda/cuda_kernels.hpp"
#include "tests/mpi/check.hpp"

#include <cstring>
#include <random>

namespace {
// Relative and absolute error bounds per dtype: the device reorders and contracts (FMA)
// floating-point work; integers must agree exactly.
std::string compare_per_dtype(const offload::product_views& expected, const offload::product_views& got) {
  if (expected.size() != got.size()) return offload::compare_products(expected, got);
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const double rel = expected[i].type == offload::dtype::f32   ? 1e-5
                       : expected[i].type == offload::dtype::f64 ? 1e-12
                                                                 : 0;
    const double abs = expected[i].type == offload::dtype::f32   ? 1e-6
                       : expected[i].type == offload::dtype::f64 ? 1e-14
                                                                 : 0;
    auto diff =
        offload::compare_products(offload::product_views({expected[i]}), offload::product_views({got[i]}), rel, abs);
    if (!diff.empty()) return diff;
  }
  return {};
}
}  // namespace

using namespace offload;

// --probe: exit 0 when a device is usable, else 77; --probe-absent: the reverse.
// Otherwise: [--plugin PATH]...
int main(int argc, char** argv) {
  std::string why;
  const bool available = kernels::cuda::device_available(why);
  if (argc > 1 && std::string(argv[1]) == "--probe-absent") {
    std::printf("%s\n", available ? "a CUDA device is visible" : why.c_str());
    return available ? 77 : 0;
  }
  if (argc > 1 && std::string(argv[1]) == "--probe") {
    if (!available) std::printf("%s\n", why.c_str());
    return available ? 0 : 77;
  }
  if (!available) {
    std::printf("SKIP: %s\n", why.c_str());
    return 77;
  }
  kernel_registry all = kernel_registry::builtin();
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::string(argv[i]) != "--plugin") {
      std::printf("usage: %s [--probe | --probe-absent | --plugin PATH...]\n", argv[0]);
      return 2;
    }
    load_plugin(all, argv[i + 1]);
  }
  auto pinned = host_pool::make();
  pinned->set_pinner(kernels::cuda::host_pinner());
  std::mt19937_64 seeds(std::random_device{}());
  for (const auto& name : all.names()) {
    const kernel& k = *all.find(name);
    const bool builtin = kernel_registry::builtin().find(name) != nullptr;
    EXPECT(!builtin || kernels::cuda::implementation(k) != nullptr, "built-in %s has no CUDA implementation",
           name.c_str());
    if (kernels::cuda::implementation(k) == nullptr) {
      std::printf("%s (%s): no CUDA implementation, not compared\n", name.c_str(), all.origin(name).c_str());
      continue;
    }
    auto impl = [&k](const product_views& in, message_writer& out) { kernels::cuda::run(k, in, out); };
    for (std::uint64_t size : {1ull, 7ull, 300ull}) {
      const std::uint64_t seed = seeds();
      auto in = k.make_inputs({seed, size, 50});
      product_views views(in);
      auto expected = run_cpu(k, views, {});
      auto specs = k.output_specs(views);
      message_writer out({message_kind::reply, 0, 0, status::ok}, specs);
      for (std::size_t i = 0; i < specs.size(); ++i) std::memset(out.payload(i).data(), 0xFF, out.payload(i).size());
      impl(views, out);
      auto got = message::from(std::move(out).finish());
      EXPECT(got.ok(), "%s: CUDA output does not decode", name.c_str());
      auto diff = compare_per_dtype(expected.products(), got.value().products());
      EXPECT(diff.empty(), "%s size %llu seed %llu: %s", name.c_str(), (unsigned long long)size,
             (unsigned long long)seed, diff.c_str());

      // The same from and into a pinned pool (a receiver's with the CUDA backend): the runner
      // copies straight from the inputs and into the outputs, without its staging buffer.
      std::vector<pooled_product> pinned_in;
      for (const auto& p : in) {
        pooled_product q{p.name, p.type, p.count, pinned->acquire(p.bytes.size())};
        if (!p.bytes.empty()) std::memcpy(q.bytes.data(), p.bytes.data(), p.bytes.size());
        pinned_in.push_back(std::move(q));
      }
      const product_views pinned_views(pinned_in);
      EXPECT(pinned_in.empty() || pinned_in[0].bytes.empty() || kernels::cuda::is_pinned(pinned_in[0].bytes.data()),
             "%s: a pooled block is not pinned", name.c_str());
      message_writer pout({message_kind::reply, 0, 0, status::ok}, specs,
                          pinned->acquire(std::size_t(message_writer::size_for(specs))));
      for (std::size_t i = 0; i < specs.size(); ++i) std::memset(pout.payload(i).data(), 0xFF, pout.payload(i).size());
      impl(pinned_views, pout);
      auto pgot = message::from(std::move(pout).finish());
      EXPECT(pgot.ok(), "%s: CUDA output (pinned) does not decode", name.c_str());
      diff = compare_per_dtype(expected.products(), pgot.value().products());
      EXPECT(diff.empty(), "%s size %llu pinned: %s", name.c_str(), (unsigned long long)size, diff.c_str());
    }
    // Batched: one launch over three joined requests, split back, against each CPU run.
    if (k.batching().joinable) {
      std::vector<std::vector<product>> inputs;
      for (std::uint64_t size : {3ull, 1ull, 200ull}) inputs.push_back(k.make_inputs({seeds(), size, 50}));
      for (auto& in : inputs)  // parameters must be equal to join
        for (std::size_t p = 0; p < in.size(); ++p)
          for (const auto& param : k.batching().params)
            if (in[p].name == param) in[p] = inputs[0][p];
      std::vector<product_views> views;
      for (const auto& in : inputs) views.emplace_back(in);
      std::vector<const product_views*> ins;
      for (const auto& v : views) ins.push_back(&v);
      auto joined = join_inputs(k, ins);
      EXPECT(joined.has_value(), "%s: requests not joinable", name.c_str());
      if (joined) {
        product_views jv(*joined);
        auto jspecs = k.output_specs(jv);
        message_writer jout({message_kind::reply, 0, 0, status::ok}, jspecs);
        for (std::size_t i = 0; i < jspecs.size(); ++i)
          std::memset(jout.payload(i).data(), 0xFF, jout.payload(i).size());
        impl(jv, jout);
        auto jm = message::from(std::move(jout).finish());
        std::vector<message_writer> writers;
        for (const auto& v : views) writers.emplace_back(message_info{}, k.output_specs(v));
        std::vector<message_writer*> outs;
        for (auto& w : writers) outs.push_back(&w);
        split_outputs(jm.value().products(), outs);
        for (std::size_t i = 0; i < writers.size(); ++i) {
          auto got = message::from(std::move(writers[i]).finish());
          auto expected_i = run_cpu(k, views[i], {});
          auto diff = compare_per_dtype(expected_i.products(), got.value().products());
          EXPECT(diff.empty(), "%s batched, request %zu: %s", name.c_str(), i, diff.c_str());
        }
      }
    }
    std::printf("%s: CUDA agrees with CPU%s\n", name.c_str(), k.batching().joinable ? ", batched too" : "");
  }
  // Host<->device copy rates from the pool's pinned blocks against pageable memory (printed for
  // gpu_check.sh's table; no threshold).
  for (std::size_t bytes : {std::size_t{64} << 10, std::size_t{1} << 20, std::size_t{16} << 20}) {
    const auto r = kernels::cuda::measure_copy_rates(bytes, bytes >= (std::size_t{16} << 20) ? 20 : 200);
    EXPECT(r.pinned_pool, "a %zu-byte pool block was not pinned", bytes);
    std::printf(
        "copy %8zu B: h2d pooled pinned %.2f GB/s, pageable %.2f GB/s; d2h pooled pinned %.2f GB/s, "
        "pageable %.2f GB/s\n",
        bytes, r.h2d_pooled / 1e9, r.h2d_pageable / 1e9, r.d2h_pooled / 1e9, r.d2h_pageable / 1e9);
  }
  const auto ps = pinned->stats();
  EXPECT(ps.bytes_pinned > 0, "the pinned pool pinned nothing");
  std::printf("%s: %d failed checks\n", offload_test::failures == 0 ? "PASS" : "FAIL", offload_test::failures);
  return offload_test::failures == 0 ? 0 : 1;
}
