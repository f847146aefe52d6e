#include "executor.hpp"

#include "src/base/clock.hpp"

#include <stdexcept>
#include <string>

namespace offload::detail {

executors::executors(backend& be, host_pool& pool, usage_fn usage, std::function<void()> wake, std::size_t threads)
    : m_be(be), m_pool(pool), m_usage(std::move(usage)), m_wake(std::move(wake)) {
  for (std::size_t i = 0; i < threads; ++i) m_threads.emplace_back([this] { work(); });
}

executors::~executors() {
  m_queue.close();
  for (auto& t : m_threads) t.join();
}

void executors::start(job_batch b) {
  if (m_busy >= m_threads.size()) m_threads.emplace_back([this] { work(); });
  ++m_busy;
  m_queue.push(std::move(b));
}

std::vector<finished_batch> executors::take_finished() {
  std::vector<finished_batch> out;
  {
    std::lock_guard lock(m_finished_mutex);
    out.swap(m_finished);
  }
  m_busy -= out.size();
  return out;
}

void executors::work() {
  while (auto next = m_queue.pop()) {
    auto replies = run(*next);
    {
      std::lock_guard lock(m_finished_mutex);
      m_finished.push_back({next->queue, std::move(replies)});
    }
    m_wake();  // replies to send; the scheduler may start the next batch
  }
}

namespace {
/// Where each output of a request lies when the kernel computes it over an input
/// (kernel::in_place): the input's bytes in the request's buffer; null for the others.
/// Throws std::logic_error for pairs that do not fit (a kernel bug).
std::vector<std::byte*> placed_outputs(const kernel& k, message& request, const std::vector<product_spec>& specs) {
  const auto pairs = k.in_place(request.products());
  if (pairs.empty()) return {};
  std::vector<std::byte*> placed(specs.size(), nullptr);
  std::vector<bool> input_used(request.products().size(), false);
  for (const auto& [o, i] : pairs) {
    if (o >= specs.size() || i >= input_used.size() || placed[o] != nullptr || input_used[i] ||
        specs[o].size_bytes() != request.products()[i].size_bytes())
      throw std::logic_error("kernel '" + std::string(k.name()) + "': in_place pair (output " + std::to_string(o) +
                             ", input " + std::to_string(i) + ") is out of range, repeated or of another size");
    input_used[i] = true;
    placed[o] = request.writable_payload(i).data();
  }
  return placed;
}
}  // namespace

std::vector<finished_job> executors::run(job_batch& b) {
  const kernel& k = *b.k;
  const std::uint64_t taken = now_ns();
  std::vector<finished_job> out;
  std::vector<const product_views*> ins;
  std::vector<message_writer> writers;
  std::vector<job*> jobs_of;
  std::vector<std::uint64_t> ids, received;  // (the requests' own fields move with their buffers)
  std::vector<int> peers;
  writers.reserve(b.items.size());
  for (auto& j : b.items) {
    const auto& h = j.request.header();
    try {
      auto specs = k.output_specs(j.request.products());
      for (const auto& o : specs)  // (a shape that does not fit its count would make a malformed reply)
        if (!o.dims.empty())
          if (auto bad = shape_problem(o.name, o.dims, o.count); !bad.empty()) throw output_error(bad);
      auto placed = placed_outputs(k, j.request, specs);
      // Storage for what is not placed over an input: the head alone when everything is.
      const std::uint64_t storage = message_writer::storage_for(specs, placed);
      writers.emplace_back(message_info{message_kind::reply, h.request_id, h.kernel_id, status::ok}, specs,
                           m_pool.acquire(static_cast<std::size_t>(storage)), std::move(placed));
      ins.push_back(&j.request.products());
      jobs_of.push_back(&j);
      ids.push_back(h.request_id);
      peers.push_back(j.peer);
      received.push_back(j.received_ns);
    } catch (const std::exception& e) {
      const bool input = dynamic_cast<const input_error*>(&e) != nullptr;
      const bool defect = dynamic_cast<const output_error*>(&e) != nullptr;
      const std::string text = "kernel '" + std::string(k.name()) + "': " + e.what();
      auto reply = encode_error(
          h.request_id, input ? status::bad_input : (defect ? status::bad_output : status::kernel_failed), text);
      write_times(reply.span(), {j.received_ns, 0, 0});
      out.push_back({j.peer, outgoing_message::whole(std::move(reply)), true, false, defect ? text : "", &k,
                     j.received_ns, taken, taken, taken, 0, false});
    }
  }
  if (ins.empty()) return out;
  std::vector<message_writer*> outs;
  for (auto& w : writers) outs.push_back(&w);
  std::uint64_t items = 0;
  std::vector<std::uint64_t> items_of(ins.size(), 0);
  for (std::size_t i = 0; i < ins.size(); ++i) {
    try {
      items_of[i] = k.items(*ins[i]);
      items += items_of[i];
    } catch (const std::exception&) {  // (the kernel refuses these inputs below)
    }
  }
  m_usage(1, items);
  const std::uint64_t start = now_ns();
  try {
    m_be.run(k, ins, outs);
    const std::uint64_t end = now_ns();
    for (std::size_t i = 0; i < writers.size(); ++i) {
      const bool in_place = writers[i].gathered();
      auto reply = std::move(writers[i]).finish_outgoing();
      // In place: sent from the request's buffer, which the reply keeps alive until it is out.
      if (in_place) reply.keep_alive = std::make_shared<message>(std::move(jobs_of[i]->request));
      write_times(reply.storage.span(), {received[i], start, end});
      out.push_back(
          {peers[i], std::move(reply), false, in_place, "", &k, received[i], taken, start, end, items_of[i], i == 0});
    }
  } catch (const std::exception& e) {
    // A kernel that writes an output as another dtype, or a joined run whose outputs do not
    // split into the requests' layouts, broke its own specs: a defect, not a failure to run.
    const bool defect = dynamic_cast<const output_error*>(&e) != nullptr;
    const std::string text = "kernel '" + std::string(k.name()) + (defect ? "' broke its output specs" : "' failed") +
                             " on backend " + std::string(m_be.name()) + ": " + e.what();
    for (std::size_t i = 0; i < ids.size(); ++i) {
      auto reply = encode_error(ids[i], defect ? status::bad_output : status::kernel_failed, text);
      const std::uint64_t end = now_ns();
      write_times(reply.span(), {received[i], start, end});
      out.push_back({peers[i], outgoing_message::whole(std::move(reply)), true, false, defect ? text : "", &k,
                     received[i], taken, start, end, 0, false});
    }
  }
  m_usage(-1, 0);
  return out;
}

}  // namespace offload::detail
