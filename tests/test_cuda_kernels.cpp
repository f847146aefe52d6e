// CUDA against CPU for every kernel, over fresh random inputs, with outputs poisoned before
// each CUDA run so that unwritten elements show. Exits 77 (skipped) without a usable GPU.
#include <offload/kernel.hpp>

#include "cuda_kernels.hpp"
#include "mpi/check.hpp"

#include <cstring>
#include <random>

using namespace offload;

// --probe: exit 0 when a device is usable, else 77; --probe-absent: the reverse.
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
  std::mt19937_64 seeds(std::random_device{}());
  const auto& all = kernel_registry::builtin();
  for (const auto& name : all.names()) {
    const kernel& k = *all.find(name);
    auto impl = kernels::cuda::find(name);
    EXPECT(impl != nullptr, "%s has no CUDA implementation", name.c_str());
    if (impl == nullptr) continue;
    for (std::uint64_t size : {1ull, 7ull, 300ull}) {
      const std::uint64_t seed = seeds();
      auto in = k.make_inputs({seed, size, 50});
      product_views views(in);
      auto expected = message::from(run_cpu(k, views, {}));
      auto specs = k.output_specs(views);
      message_writer out({message_kind::reply, 0, 0, status::ok}, specs);
      for (std::size_t i = 0; i < specs.size(); ++i) std::memset(out.payload(i).data(), 0xFF, out.payload(i).size());
      impl(views, out);
      auto got = message::from(std::move(out).finish());
      EXPECT(got.ok(), "%s: CUDA output does not decode", name.c_str());
      // f32 math in a different order (and FMA contraction) on the device: relative 1e-5.
      auto diff = compare_products(expected.value().products(), got.value().products(), 1e-5, 1e-6);
      EXPECT(diff.empty(), "%s size %llu seed %llu: %s", name.c_str(), (unsigned long long)size,
             (unsigned long long)seed, diff.c_str());
    }
    std::printf("%s: CUDA agrees with CPU\n", name.c_str());
  }
  std::printf("%s: %d failed checks\n", offload_test::failures == 0 ? "PASS" : "FAIL", offload_test::failures);
  return offload_test::failures == 0 ? 0 : 1;
}
