#include "event_loop.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <optional>

namespace offload::app {
namespace {

std::uint64_t mix(std::uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return x;
}

/// A 64-bit hash of bytes: four multiply-xor lanes over 8-byte words, then the tail.
std::uint64_t hash_bytes(const std::byte* p, std::size_t n, std::uint64_t h) {
  constexpr std::uint64_t k = 0x9E3779B97F4A7C15ull;
  std::uint64_t lane[4] = {h, h ^ 1, h ^ 2, h ^ 3};
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (int l = 0; l < 4; ++l) {
      std::uint64_t w;
      std::memcpy(&w, p + i + 8 * l, 8);
      lane[l] = (lane[l] ^ w) * k;
    }
  for (; i < n; ++i) lane[0] = (lane[0] ^ std::uint64_t(p[i])) * k;
  return mix(lane[0] ^ mix(lane[1]) ^ mix(mix(lane[2])) ^ mix(mix(mix(lane[3]))) ^ n);
}

std::uint64_t hash_products(const product_views& products, std::uint64_t h) {
  for (const auto& p : products) {
    h = hash_bytes(reinterpret_cast<const std::byte*>(p.name.data()), p.name.size(), h);
    h = mix(h ^ (std::uint64_t(p.type) << 56) ^ p.count);
    h = hash_bytes(p.data, p.size_bytes(), h);
  }
  return h;
}

std::uint64_t hash_double(double v, std::uint64_t h) {
  std::uint64_t bits;
  std::memcpy(&bits, &v, 8);
  return mix(h ^ bits);
}

std::uint64_t scaled(std::uint64_t iterations, double factor) {
  return std::uint64_t(std::llround(double(iterations) * factor));
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

void request_record::flatten(std::vector<double>& out) const {
  out.insert(out.end(), {double(module), double(int(kind)), latency});
  out.insert(out.end(), stages.begin(), stages.end());
}

request_record request_record::unflatten(const double* p) {
  request_record r;
  r.module = int(p[0]);
  r.kind = request_kind(int(p[1]));
  r.latency = p[2];
  for (std::size_t s = 0; s < 5; ++s) r.stages[s] = p[3 + s];
  return r;
}

struct event_loop::event {
  std::uint64_t index = 0;
  std::chrono::steady_clock::time_point t0;
  std::chrono::steady_clock::time_point submitted;  // end of the acquire step
  std::uint64_t hash = 0;                           // of the "before" work, then of everything
  double factor = 1;                                // of its CPU work (workload::cpu_cv)
  std::vector<std::optional<result>> results;       // remote mode: one per module
  std::atomic<std::size_t> pending{0};
};

event_loop::event_loop(transmitter* tx, const workload& w, std::vector<const kernel*> kernels, const loop_options& o)
    : m_tx(tx),
      m_w(w),
      m_kernels(std::move(kernels)),
      m_opt(o),
      m_event_time(o.events, 0.0),
      m_event_wait(o.events, 0.0),
      m_event_end(o.events, 0.0),
      m_requests(o.events * w.modules.size()) {
  if (o.same_inputs)
    for (std::size_t m = 0; m < m_kernels.size(); ++m)
      m_same.push_back(std::make_shared<const std::vector<product>>(m_kernels[m]->make_inputs(params(0, m))));
}

input_params event_loop::params(std::uint64_t index, std::size_t module) const {
  const auto& m = m_w.modules[module];
  if (m_opt.same_inputs) index = 0;
  const std::uint64_t seed = mix(m_opt.seed ^ mix((std::uint64_t(m_opt.stream) << 40) ^ index) ^ (module << 20));
  return {seed, m.items_for(seed), m.work};
}

void event_loop::run(const std::function<void(std::uint64_t)>& tick, const std::function<void(int)>& on_worker_start) {
  m_run_start = std::chrono::steady_clock::now();
  const auto first = std::min<std::uint64_t>(std::uint64_t(m_opt.inflight), m_opt.events);
  for (std::uint64_t i = 0; i < first; ++i) push([this] { start(); });
  std::vector<std::thread> workers;
  for (int t = 0; t < m_opt.threads; ++t)
    workers.emplace_back([this, t, &on_worker_start] { work(t, on_worker_start); });
  {
    std::unique_lock lock(m_mutex);
    while (!m_done_cv.wait_for(lock, std::chrono::seconds(1), [&] { return m_produced == m_opt.events; }))
      if (tick) {
        const auto done = m_produced;
        lock.unlock();
        tick(done);
        lock.lock();
      }
  }
  for (auto& w : workers) w.join();
}

std::vector<request_record> event_loop::requests() const {
  return m_requests;
}

void event_loop::push(std::function<void()> task) {
  {
    std::lock_guard lock(m_mutex);
    m_tasks.push_back(std::move(task));
  }
  m_cv.notify_one();
}

void event_loop::work(int t, const std::function<void(int)>& on_start) {
  if (on_start) on_start(t);
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock lock(m_mutex);
      m_cv.wait(lock, [&] { return !m_tasks.empty() || m_produced == m_opt.events; });
      if (m_tasks.empty()) return;
      task = std::move(m_tasks.front());
      m_tasks.pop_front();
    }
    task();
  }
}

void event_loop::start() {
  auto ev = std::make_shared<event>();
  ev->index = m_next++;
  if (ev->index >= m_opt.events) return;
  ev->t0 = std::chrono::steady_clock::now();
  const std::uint64_t event_key = mix((std::uint64_t(m_opt.stream) << 40) ^ ev->index ^ m_opt.seed);
  ev->factor = cpu_factor(m_w, event_key);
  ev->hash = hash_double(cpu_work(event_key, scaled(m_w.before_iterations, ev->factor), m_opt.hold_cpu), event_key);
  const std::size_t modules = m_w.modules.size();

  if (m_tx == nullptr) {  // local mode: every module inline, then the produce step
    for (std::size_t m = 0; m < modules; ++m) {
      const auto inputs = m_kernels[m]->make_inputs(params(ev->index, m));
      const auto t1 = std::chrono::steady_clock::now();
      const auto out = run_cpu(*m_kernels[m], product_views(inputs), {message_kind::reply});
      auto& rec = m_requests[ev->index * modules + m];
      rec = {int(m), request_kind::inline_cpu, seconds_since(t1), {}};
      rec.stages[3] = rec.latency;  // all of it is kernel time
      ev->hash = hash_products(out.products(), ev->hash);
    }
    finish(ev);
    return;
  }

  ev->results.resize(modules);
  ev->pending = modules + 1;  // one more, released once every request is submitted
  auto arrived = [this, ev] {
    if (--ev->pending > 0) return;
    m_event_wait[ev->index] =
        std::max(0.0, std::chrono::duration<double>(std::chrono::steady_clock::now() - ev->submitted).count());
    push([this, ev] { produce(ev); });
  };
  for (std::size_t m = 0; m < modules; ++m) {
    auto done = [ev, m, arrived](result&& r) {
      ev->results[m].emplace(std::move(r));
      arrived();
    };
    if (!m_same.empty()) {  // --same-inputs: no input generation in the loop
      if (m_opt.copy_inputs)
        m_tx->submit(m_kernels[m]->name(), product_views(*m_same[m]), std::move(done), {m_opt.priority});
      else
        m_tx->submit(m_kernels[m]->name(), shared_products{product_views(*m_same[m]), m_same[m]}, std::move(done),
                     {m_opt.priority});
      continue;
    }
    if (!m_opt.fresh_malloc && !m_opt.copy_inputs) {
      // As a framework would: the module writes its products into the transmitter's pooled
      // memory, and the request's payloads go from there; the blocks return when both are done.
      auto inputs = m_kernels[m]->make_inputs(params(ev->index, m),
                                              [tx = m_tx](std::string name, dtype type, std::uint64_t count) {
                                                return tx->make_product(std::move(name), type, count);
                                              });
      m_tx->submit(m_kernels[m]->name(), shared_products::adopt(std::move(inputs)), std::move(done), {m_opt.priority});
      continue;
    }
    auto inputs = m_kernels[m]->make_inputs(params(ev->index, m));
    if (m_opt.copy_inputs)
      m_tx->submit(m_kernels[m]->name(), product_views(inputs), std::move(done), {m_opt.priority});
    else  // the request's payloads go from the event's products, which it holds until done
      m_tx->submit(m_kernels[m]->name(), shared_products::adopt(std::move(inputs)), std::move(done), {m_opt.priority});
  }
  ev->submitted = std::chrono::steady_clock::now();
  arrived();
}

void event_loop::produce(const std::shared_ptr<event>& ev) {
  const std::size_t modules = m_w.modules.size();
  for (std::size_t m = 0; m < modules; ++m) {
    const result& r = *ev->results[m];
    auto& rec = m_requests[ev->index * modules + m];
    rec.module = int(m);
    rec.latency = r.latency();
    if (r.receiver() >= 0) {
      const auto& t = r.timing();
      rec.kind = request_kind::remote;
      rec.stages = {t.transmitter_queue(), t.network_out(), t.receiver_queue(), t.kernel(), t.network_back()};
      double sum = 0;
      for (double s : rec.stages) sum += s;
      // The stages must add up to the round trip, and that cannot exceed the latency the
      // transmitter measured on its own (submit to delivery, a later clock reading).
      if (std::abs(sum - t.round_trip()) > 1e-9 || t.round_trip() > r.latency() + 1e-6) ++m_not_adding_up;
    } else {
      rec.kind = request_kind::fallback;
    }
    if (!r.ok()) {
      spdlog::error("event {} module {}: {}", ev->index, m_w.modules[m].name, r.error());
      ++m_failed;
      continue;
    }
    check(ev, m, r.products(), r.receiver() >= 0, r.receiver());
    ev->hash = hash_products(r.products(), ev->hash);
  }
  ev->results.clear();  // return the reply buffers before the "after" work
  finish(ev);
}

void event_loop::check(const std::shared_ptr<event>& ev, std::size_t m, const product_views& outputs, bool remote,
                       int receiver) {
  if (!m_opt.validate) return;
  const auto inputs = m_kernels[m]->make_inputs(params(ev->index, m));
  const auto diff = compare_with_cpu(*m_kernels[m], product_views(inputs), outputs, m_opt.tolerance, m_opt.tolerance);
  if (diff.empty()) return;
  spdlog::error("event {} module {} (from {}): result differs from the local CPU implementation: {}", ev->index,
                m_w.modules[m].name, remote ? "receiver rank " + std::to_string(receiver) : "local fallback", diff);
  ++m_mismatches;
}

void event_loop::finish(const std::shared_ptr<event>& ev) {
  ev->hash = hash_double(cpu_work(ev->hash, scaled(m_w.after_iterations, ev->factor), m_opt.hold_cpu), ev->hash);
  m_digest += mix(ev->hash ^ (std::uint64_t(m_opt.stream) << 40) ^ ev->index);
  m_event_time[ev->index] = seconds_since(ev->t0);
  m_event_end[ev->index] = seconds_since(m_run_start);
  bool last;
  {
    std::lock_guard lock(m_mutex);
    last = ++m_produced == m_opt.events;
  }
  if (last) {
    m_cv.notify_all();
    m_done_cv.notify_all();
  } else {
    push([this] { start(); });
  }
}

}  // namespace offload::app
