// The request lifecycle: submit, dispatch, answers, timeouts, fallback (transmitter_impl.hpp
// lists the other units).
#include "transmitter_impl.hpp"

#include "src/session/handshake.hpp"

#include <offload/log.hpp>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <queue>
#include <unordered_map>

namespace offload {

using detail::clock_type;
using detail::receiver_link;
using detail::request_ptr;
using detail::result_access;

std::string_view to_string(fallback_reason r) noexcept {
  switch (r) {
    case fallback_reason::none: return "none";
    case fallback_reason::timeout: return "timeout";
    case fallback_reason::error_reply: return "error_reply";
    case fallback_reason::no_receiver: return "no_receiver";
  }
  return "unknown";
}

namespace {

/// The output specs a reply carries, compared with what the kernel promised (a shape only where
/// it promised one: a flat output may come back shaped, as a KServe v2 server gives it).
std::string reply_mismatch(const std::vector<product_spec>& expected, const product_views& got) {
  if (expected.size() != got.size())
    return "reply has " + std::to_string(got.size()) + " products, the kernel makes " + std::to_string(expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const auto& e = expected[i];
    const auto& g = got[i];
    if (e.name != g.name || e.type != g.type || e.count != g.count || (!e.dims.empty() && e.shape() != g.shape()))
      return "reply product " + std::to_string(i) + " is '" + std::string(g.name) + "' " +
             std::string(dtype_name(g.type)) + shape_text(g.shape()) + ", expected '" + e.name + "' " +
             std::string(dtype_name(e.type)) + shape_text(e.shape());
  }
  return {};
}

}  // namespace

void transmitter::impl::deliver(const request_ptr& r, result&& res) {
  result_access::set_latency(res, std::chrono::duration<double>(clock_type::now() - r->submitted).count());
  count([&](transmitter_stats& s) {
    if (!res.ok()) s.failed += 1;
    if (res.fallback() == fallback_reason::none) {
      s.remote += 1;
    } else {
      s.fallbacks += 1;
      if (res.fallback() == fallback_reason::timeout) s.fallback_timeout += 1;
      if (res.fallback() == fallback_reason::error_reply) s.fallback_error += 1;
      if (res.fallback() == fallback_reason::no_receiver) s.fallback_no_receiver += 1;
    }
  });
  try {
    r->done(std::move(res));
  } catch (const std::exception& e) {
    offload::logger()->error("transmitter rank {}: result callback of request {} threw: {}", rt.rank(), r->id,
                             e.what());
  }
  {
    std::lock_guard lock(delivered_mutex);
    ++delivered_count;
  }
  delivered_cv.notify_all();
}

void transmitter::impl::fall_back(request_ptr r, fallback_reason why, std::string remote_error) {
  fallbacks->push(std::move(r), why, std::move(remote_error));
}

bool transmitter::impl::eligible(const detail::request_state& r, std::size_t li) const {
  if (li < r.busy_at.size() && r.busy_at[li]) return false;
  const auto& link = links[li];
  if (!link.terms) return true;
  const auto& limits = link.terms->limits;
  if (r.size > limits.max_message_bytes || r.inputs.size() > limits.max_products) return false;
  for (const auto& p : r.inputs)
    if (p.name.size() > limits.max_name_length) return false;
  return true;
}

void transmitter::impl::dispatch() {
  // Requests no receiver has a credit for now wait, in order; those behind them whose kernel
  // another receiver serves go on.
  std::deque<request_ptr> blocked;
  const auto any_credit = [&] {
    for (const auto& l : links)
      if (l.state == detail::link_state::open && !l.suspect && l.outstanding < l.credits) return true;
    return false;
  };
  while (!waiting.empty()) {
    request_ptr r = waiting.front();
    if (!live.contains(r->id)) {  // timed out while waiting
      waiting.pop_front();
      continue;
    }
    const detail::eligible_fn ok = [&](std::size_t i) { return eligible(*r, i); };
    if (!detail::any_takes(links, r->kernel_id, ok)) {
      waiting.pop_front();
      live.erase(r->id);
      if (r->busy_at.empty())
        fall_back(std::move(r), fallback_reason::no_receiver);
      else  // every receiver that takes requests answered busy
        fall_back(std::move(r), fallback_reason::error_reply, "every receiver answered busy");
      continue;
    }
    if (!any_credit()) break;
    waiting.pop_front();
    const int li = detail::choose_receiver(links, r->kernel_id, cfg.policy, next_link, ok);
    if (li < 0) {  // the receivers of its kernel are out of credits
      blocked.push_back(std::move(r));
      continue;
    }
    auto& l = links[static_cast<std::size_t>(li)];
    r->sent_ns = detail::now_ns();
    // How long this side still waits for it, and its priority (docs/protocol.md section 2.4).
    wire_times fields{};
    if (cfg.send_deadlines) {
      const auto left =
          std::chrono::duration_cast<std::chrono::nanoseconds>(r->submitted + r->timeout - clock_type::now());
      fields[request_timeout_ns] = std::uint64_t(std::max<std::int64_t>(left.count(), 1));
    }
    fields[request_priority] = r->priority;
    if (r->owner && r->gathered.total_size == 0)  // a sharing submit sent before (busy): its head again
      r->gathered = gather({message_kind::request, r->id, r->kernel_id, status::ok}, r->inputs);
    // The header (at the start of the head) gets the times and the kernel's id on that receiver.
    // (A request sent again after `busy` rewrites it: that receiver has taken it whole.)
    const auto set_header = [&](std::span<std::byte> header) {
      write_times(header, fields);
      write_kernel_id(header, static_cast<std::uint32_t>(l.kernel_ids[r->kernel_id]));
    };
    outgoing_message out;
    if (r->gathered.total_size > 0) {  // sharing submit: the caller's payloads, sent from where they lie
      out = std::exchange(r->gathered, {});
      set_header(out.storage.span());
    } else {
      const auto whole = r->request.writable_bytes();
      set_header(whole);
      out = outgoing_message::whole(whole, nullptr);
    }
    out.keep_alive = r;  // the request holds every byte the message points into
    const std::uint64_t bytes = out.total_size;
    ep->send(l.peer, std::move(out));
    l.last_sent = clock_type::now();
    ++l.outstanding;
    in_flight.emplace(r->id, static_cast<std::size_t>(li));
    count([&](transmitter_stats& s) { s.bytes_out += bytes; });
  }
  waiting.insert(waiting.begin(), std::make_move_iterator(blocked.begin()), std::make_move_iterator(blocked.end()));
}

void transmitter::impl::handle(detail::incoming in) {
  if (in.closed) {
    for (std::size_t li = 0; li < links.size(); ++li)
      if (links[li].peer == in.source) lose_session(li, in.closed_reason);
    return;
  }
  const std::uint64_t replied_ns = detail::now_ns();
  count([&](transmitter_stats& s) { s.bytes_in += in.size; });
  const std::uint64_t peeked = peek_request_id(in.bytes.span());
  auto decoded = in.oversized
                     ? wire_result<message>(wire_error{
                           wire_errc::too_large, "reply of " + std::to_string(in.size) + " bytes exceeds the maximum"})
                 : !in.broken.empty() ? wire_result<message>(wire_error{wire_errc::bad_parts, in.broken})
                                      : message::from(std::move(in.bytes), cfg.limits);
  auto link_of = [&](int peer) -> receiver_link* {
    for (auto& l : links)
      if (l.peer == peer) return &l;
    return nullptr;
  };
  receiver_link* link = link_of(in.source);
  if (link == nullptr) {
    offload::logger()->warn("transmitter rank {}: ignoring a message from {}, which is not one of its receivers",
                            rt.rank(), ep->describe(in.source));
    return;
  }
  if (link->suspect) {
    std::lock_guard lock(link_mutex);
    link->suspect = false;
    offload::logger()->info("transmitter rank {}: receiver {} answers again; sending it requests again", rt.rank(),
                            ep->describe(in.source));
  }
  if (decoded && (decoded.value().header().kind == message_kind::hello_ack ||
                  decoded.value().header().kind == message_kind::goodbye_ack)) {
    handle_session(*link, decoded.value(), replied_ns);
    return;
  }
  // A reply or an error for a request; the id comes from the header even when it is malformed.
  const std::uint64_t id = decoded ? decoded.value().header().request_id : peeked;
  handle_answer(*link, in.source, std::move(decoded), id, replied_ns);
}

void transmitter::impl::handle_answer(receiver_link& link, int source, wire_result<message> decoded, std::uint64_t id,
                                      std::uint64_t received_ns) {
  const bool is_error = decoded && decoded.value().header().kind == message_kind::error;
  if (is_error && decoded.value().header().status == status::no_handshake && link.state == detail::link_state::open) {
    // The receiver dropped our session (it heard nothing from us for its idle timeout): every
    // request in flight to it, this one too, falls back.
    lose_session(
        static_cast<std::size_t>(&link - links.data()),
        "receiver " + ep->describe(source) + " ended this session (" + error_text(decoded.value().view()) + ")");
    return;
  }
  auto flight = in_flight.find(id);
  if (flight == in_flight.end()) {
    if (is_error)
      offload::logger()->error("transmitter rank {}: error from receiver {}: {}", rt.rank(), ep->describe(source),
                               error_text(decoded.value().view()));
    else
      offload::logger()->warn("transmitter rank {}: message from {} for unknown request {} dropped", rt.rank(),
                              ep->describe(source), id);
    return;
  }
  const std::size_t li = flight->second;
  --links[li].outstanding;
  in_flight.erase(flight);
  const status answer = is_error ? decoded.value().header().status : status::ok;
  if (answer == status::busy) count([](transmitter_stats& s) { s.busy += 1; });
  if (answer == status::expired) count([](transmitter_stats& s) { s.expired += 1; });

  auto it = live.find(id);
  if (it == live.end()) {  // it fell back already
    const auto& t = decoded ? decoded.value().header().times : wire_times{};
    const std::uint64_t kernel_ns = answer == status::ok && t[2] > t[1] && t[1] > 0 ? t[2] - t[1] : 0;
    count([&](transmitter_stats& s) {
      s.late_replies += 1;
      s.late_kernel_ns += kernel_ns;
    });
    return;
  }
  if (answer == status::busy) {  // not queued there: the next receiver, if one is left to try
    request_ptr& r = it->second;
    if (r->busy_at.size() < links.size()) r->busy_at.resize(links.size(), false);
    r->busy_at[li] = true;
    if (detail::any_takes(links, r->kernel_id, [&](std::size_t i) { return eligible(*r, i); })) {
      waiting.push_front(r);  // (progress() dispatches it after this receive)
      return;
    }
  }
  request_ptr r = std::move(it->second);
  live.erase(it);
  if (answer == status::expired) {
    // Its deadline there is never earlier than ours (docs/protocol.md section 2.4): our timeout
    // has passed too, and only this progress thread had not seen it yet. So it is a late reply,
    // as it is when the timeout was seen first.
    count([](transmitter_stats& s) { s.late_replies += 1; });
    fall_back(std::move(r), fallback_reason::timeout,
              "receiver " + ep->describe(source) + ": expired: " + error_text(decoded.value().view()));
    return;
  }

  std::string problem;
  bool defect = false;  // the kernel broke its output specs, there or between the two sides
  if (!decoded) {
    problem = "malformed reply: " + decoded.error().text;
  } else if (is_error) {
    problem = std::string(to_string(answer)) + ": " + error_text(decoded.value().view());
    defect = answer == status::bad_output;
  } else if (decoded.value().header().kind != message_kind::reply) {
    problem = "unexpected '" + std::string(to_string(decoded.value().header().kind)) + "' message";
  } else {
    problem = reply_mismatch(r->outputs, decoded.value().products());
    defect = !problem.empty();
  }
  if (defect) {
    count([](transmitter_stats& s) { s.bad_outputs += 1; });
    if (defects_logged.insert(r->kernel_id).second)
      offload::logger()->warn(
          "transmitter rank {}: kernel '{}' broke its output specs at receiver {}: {}; such requests fall back to "
          "the local CPU (further ones are counted in bad_outputs, not logged)",
          rt.rank(), r->k->name(), ep->describe(source), problem);
  }
  if (!problem.empty()) {
    offload::logger()->debug("transmitter rank {}: request {} failed at receiver {}: {}", rt.rank(), id,
                             ep->describe(source), problem);
    fall_back(std::move(r), fallback_reason::error_reply, "receiver " + ep->describe(source) + ": " + problem);
    return;
  }
  const auto& t = decoded.value().header().times;
  auto ours = [&](std::uint64_t receiver_ns) {
    return 1e-9 * double(std::int64_t(receiver_ns) - link.clock_offset_ns);
  };
  const request_timing timing{
      1e-9 * double(r->submitted_ns), 1e-9 * double(r->sent_ns), ours(t[0]), ours(t[1]), ours(t[2]),
      1e-9 * double(received_ns)};
  deliver(r, result_access::remote(std::move(decoded.value()), source, timing));
}

bool transmitter::impl::progress() {
  bool busy = ep->progress_sends();
  std::vector<request_ptr> fresh;
  {
    std::lock_guard lock(submit_mutex);
    fresh.swap(submissions);
  }
  for (auto& r : fresh) {
    live.emplace(r->id, r);
    deadlines.emplace(r->submitted + r->timeout, r->id);
    waiting.push_back(std::move(r));
    busy = true;
  }
  if (!waiting.empty()) dispatch();
  for (int i = 0; i < 64; ++i) {
    auto in = ep->receive();
    if (!in) break;
    handle(std::move(*in));
    busy = true;
  }
  if (!waiting.empty()) dispatch();
  const auto now = clock_type::now();
  if (!deadlines.empty() && deadlines.top().first <= now) {
    expire(now);
    busy = true;
  }
  if (now >= next_session_check) tend_sessions(now);
  return busy;
}

void transmitter::impl::expire(clock_type::time_point now) {
  while (!deadlines.empty() && deadlines.top().first <= now) {
    const auto id = deadlines.top().second;
    deadlines.pop();
    auto it = live.find(id);
    if (it == live.end()) continue;
    request_ptr r = std::move(it->second);
    live.erase(it);
    // Its receiver may be stopped or gone: send it nothing new until it answers again (any
    // message does). Its late reply, if one comes, is counted and dropped.
    if (auto f = in_flight.find(id); f != in_flight.end() && !links[f->second].suspect) {
      auto& l = links[f->second];
      {
        std::lock_guard lock(link_mutex);
        l.suspect = true;
      }
      count([](transmitter_stats& s) { s.suspensions += 1; });
      offload::logger()->warn(
          "transmitter rank {}: receiver {} did not answer request {} within {} ms; no new requests go "
          "to it until it answers",
          rt.rank(), ep->describe(l.peer), id,
          std::chrono::duration_cast<std::chrono::milliseconds>(r->timeout).count());
    }
    fall_back(std::move(r), fallback_reason::timeout);
  }
}

detail::request_ptr transmitter::impl::prepare(std::string_view kernel_name, const product_views& inputs,
                                               result_callback done, const submit_options& options) {
  const auto id = kernels.id_of(kernel_name);
  if (!id) throw std::invalid_argument("unknown kernel '" + std::string(kernel_name) + "'");
  if (options.timeout.count() < 0)
    throw std::invalid_argument("submit_options::timeout is " + std::to_string(options.timeout.count()) +
                                " us: it must be positive, or 0 for the transmitter's timeout");
  auto r = std::make_shared<detail::request_state>();
  r->k = kernels.by_id(*id);
  r->outputs = r->k->output_specs(inputs);  // throws input_error before anything is queued
  r->id = next_id.fetch_add(1);
  r->kernel_id = *id;
  r->done = std::move(done);
  r->priority = options.priority;
  r->timeout = options.timeout.count() > 0 ? options.timeout : cfg.timeout;
  const wire_limits& limits = request_limits;  // set before the constructor returned
  if (inputs.size() > limits.max_products)
    throw std::length_error("request has " + std::to_string(inputs.size()) + " products; the limit is " +
                            std::to_string(limits.max_products) + " (max_products)");
  std::vector<product_spec> specs;
  for (const auto& p : inputs) {
    if (p.name.size() > limits.max_name_length)
      throw std::length_error("product name '" + std::string(p.name.substr(0, 32)) + "...' has " +
                              std::to_string(p.name.size()) + " characters; the limit is " +
                              std::to_string(limits.max_name_length) + " (max_name_length)");
    specs.push_back(p.spec());
  }
  r->size = message_writer::size_for(specs);
  if (r->size > limits.max_message_bytes)
    throw std::length_error("request of " + std::to_string(r->size) + " bytes exceeds the maximum message size of " +
                            std::to_string(limits.max_message_bytes) + " (max_message_bytes)");
  if (auto problem = check_specs(specs, limits)) throw std::invalid_argument("request rejected: " + problem->text);
  return r;
}

void transmitter::impl::queue(detail::request_ptr r) {
  r->submitted = clock_type::now();
  r->submitted_ns = detail::now_ns();
  {
    std::lock_guard lock(delivered_mutex);
    if (closed) throw std::logic_error("submit after close");
    ++submitted_count;
  }
  count([&](transmitter_stats& s) { s.submitted += 1; });
  {
    std::lock_guard lock(submit_mutex);
    submissions.push_back(std::move(r));
  }
  rt.wake();
}

void transmitter::submit(std::string_view kernel_name, const product_views& inputs, result_callback done,
                         submit_options options) {
  auto& d = *m_impl;
  auto r = d.prepare(kernel_name, inputs, std::move(done), options);
  // Encoded once, into a pooled buffer; the fallback reads the same message.
  r->request = encode_message({message_kind::request, r->id, r->kernel_id, status::ok}, inputs,
                              d.pool->acquire(static_cast<std::size_t>(r->size)));
  r->inputs = r->request.products();
  d.queue(std::move(r));
}

void transmitter::submit(std::string_view kernel_name, shared_products inputs, result_callback done,
                         submit_options options) {
  auto& d = *m_impl;
  auto r = d.prepare(kernel_name, inputs.views, std::move(done), options);
  // Only the header, table and names are written; the payloads go from the caller's memory.
  std::uint64_t payload_bytes = 0;
  for (const auto& p : inputs.views) payload_bytes += p.size_bytes();
  r->gathered = gather({message_kind::request, r->id, r->kernel_id, status::ok}, inputs.views,
                       d.pool->acquire(static_cast<std::size_t>(r->size - payload_bytes)));  // the head, and padding
  r->inputs = std::move(inputs.views);
  r->owner = std::move(inputs.owner);
  d.queue(std::move(r));
}

namespace {
/// A callback that fulfils a promise, and the promise's future.
std::pair<result_callback, std::future<result>> promised() {
  auto promise = std::make_shared<std::promise<result>>();
  auto f = promise->get_future();
  return {[promise](result&& r) { promise->set_value(std::move(r)); }, std::move(f)};
}
}  // namespace

std::future<result> transmitter::submit(std::string_view kernel_name, shared_products inputs, submit_options options) {
  auto [done, f] = promised();
  submit(kernel_name, std::move(inputs), std::move(done), options);
  return std::move(f);
}

std::future<result> transmitter::submit(std::string_view kernel_name, const product_views& inputs,
                                        submit_options options) {
  auto [done, f] = promised();
  submit(kernel_name, inputs, std::move(done), options);
  return std::move(f);
}

pooled_product transmitter::make_product(std::string name, dtype type, std::uint64_t count) {
  const std::uint64_t bytes = count * dtype_size(type);
  if (dtype_size(type) != 0 && bytes / dtype_size(type) != count)
    throw std::length_error("product '" + name + "': " + std::to_string(count) + " elements overflow a size");
  if (bytes > m_impl->cfg.limits.max_message_bytes)
    throw std::length_error("product '" + name + "' of " + std::to_string(bytes) +
                            " bytes is over the maximum message size (" +
                            std::to_string(m_impl->cfg.limits.max_message_bytes) + ")");
  return {std::move(name), type, count, m_impl->pool->acquire(static_cast<std::size_t>(bytes))};
}

host_pool_stats transmitter::memory() const {
  return m_impl->pool->stats();
}

transmitter_stats transmitter::stats() const {
  std::lock_guard lock(m_impl->stats_mutex);
  return m_impl->st;
}

}  // namespace offload
