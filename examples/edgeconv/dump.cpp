// edgeconv_dump FILE SEED JETS: runs the CPU implementation on the kernel's example inputs and
// writes them with its outputs for reference.py:
//   "EDGECONV" (8 bytes), jets (u64, little endian), features f32[jets·50·4], counts i32[jets],
//   scores f32[jets·2].
#include "edgeconv.hpp"

#include <cstdio>
#include <fstream>
#include <string>

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s FILE SEED JETS\n", argv[0]);
    return 2;
  }
  const offload::kernel& k = edgeconv::kernel();
  const auto inputs = k.make_inputs({std::stoull(argv[2]), std::stoull(argv[3]), 0});
  const offload::product_views in(inputs);
  const auto out = offload::run_cpu(k, in, {});
  std::ofstream f(argv[1], std::ios::binary);
  const std::uint64_t jets = in.at("counts").count;
  f.write("EDGECONV", 8);
  f.write(reinterpret_cast<const char*>(&jets), sizeof jets);
  for (const offload::product_view& p : {in.at("features"), in.at("counts"), out.products().at("scores")})
    f.write(reinterpret_cast<const char*>(p.data), std::streamsize(p.size_bytes()));
  if (!f) {
    std::fprintf(stderr, "edgeconv_dump: cannot write %s\n", argv[1]);
    return 1;
  }
  std::printf("edgeconv_dump: %llu jets to %s\n", static_cast<unsigned long long>(jets), argv[1]);
  return 0;
}
