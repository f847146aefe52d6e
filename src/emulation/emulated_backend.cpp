// The emulated device backend (offload/emulation.hpp).
#include <offload/emulation.hpp>

#include <chrono>
#include <semaphore>
#include <stdexcept>
#include <string>
#include <thread>

namespace offload {
namespace {

/// A device of a profile, EMULATED: each batch takes the profile's time for its model and
/// size, asleep on the calling kernel thread (a GPU computes while its host thread waits), at
/// most `concurrency` batches at once; the outputs are exact (kernel::emulate_outputs, or
/// run_cpu for a kernel without a cheap path).
class emulated_device final : public backend {
 public:
  explicit emulated_device(const device_profile& p) : m_profile(p), m_slots(std::ptrdiff_t(p.concurrency)) {
    if (p.models.empty())
      throw std::invalid_argument("the emulated device needs a device profile with models (--profile)");
  }
  std::string_view name() const noexcept override { return "emulated"; }
  std::string description() const override { return "EMULATED (" + m_profile.device + ", " + m_profile.path + ")"; }
  std::size_t concurrency() const override { return m_profile.concurrency; }
  void run(const kernel& k, std::span<const product_views* const> ins, std::span<message_writer* const> outs) override {
    const model_timing* m = m_profile.find(k.name());
    if (m == nullptr)
      throw std::runtime_error("device profile " + m_profile.path + " has no model '" + std::string(k.name()) +
                               "' (it has: " + m_profile.model_names() + ")");
    double items = 0, bytes_in = 0, bytes_out = 0;
    for (std::size_t i = 0; i < ins.size(); ++i) {
      items += double(k.items(*ins[i]));
      for (const auto& p : *ins[i]) bytes_in += double(p.size_bytes());
      for (std::size_t o = 0; o < outs[i]->product_count(); ++o) bytes_out += double(outs[i]->payload(o).size());
    }
    const auto hold = std::chrono::duration<double>(m_profile.batch_seconds(*m, items, bytes_in, bytes_out));
    m_slots.acquire();
    struct release {
      std::counting_semaphore<>& s;
      ~release() { s.release(); }
    } guard{m_slots};
    const auto until = std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::nanoseconds>(hold);
    for (std::size_t i = 0; i < ins.size(); ++i)
      if (!k.emulate_outputs(*ins[i], *outs[i])) k.run_cpu(*ins[i], *outs[i]);
    std::this_thread::sleep_until(until);
  }

 private:
  device_profile m_profile;
  std::counting_semaphore<> m_slots;
};

}  // namespace

std::shared_ptr<backend> emulated_backend(const device_profile& profile) {
  return std::make_shared<emulated_device>(profile);
}

}  // namespace offload
