// A minimal outside user of the installed library: rank 0 serves, rank 1 offloads one echo.
#include <offload/mpi.hpp>
#include <offload/receiver.hpp>
#include <offload/runtime.hpp>
#include <offload/transmitter.hpp>

#include <cstdio>

int main() {
  offload::runtime rt;
  const auto& kernels = offload::kernel_registry::builtin();
  int ok = 1;
  if (rt.rank() == 0) {
    offload::receiver rx(rt, kernels, offload::mpi_link{}, std::size_t(rt.size() - 1));
    rx.wait();
  } else {
    offload::transmitter tx(rt, kernels, offload::mpi_link{{0}});
    std::vector<offload::product> in{offload::product::make("v", std::vector<double>{1.0, 2.0, 3.0})};
    auto r = tx.submit("echo", offload::product_views(in)).get();
    ok = r.ok() && r.receiver() == 0 && offload::compare_products(offload::product_views(in), r.products()).empty();
    std::printf("consumer rank %d: echo %s\n", rt.rank(), ok ? "ok" : "WRONG");
  }
  return ok ? 0 : 1;
}
