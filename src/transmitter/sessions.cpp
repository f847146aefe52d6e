// Each receiver's session: hello and its terms, keepalives, goodbye; opening and closing the
// transmitter (transmitter_impl.hpp lists the other units).
#include "transmitter_impl.hpp"

#include "src/base/clock.hpp"
#include "src/session/handshake.hpp"

#include <offload/log.hpp>

namespace offload {

using detail::clock_type;
using detail::receiver_link;

void transmitter::impl::handle_session(receiver_link& link, const message& m, std::uint64_t received_ns) {
  {
    std::lock_guard lock(link_mutex);
    if (m.header().kind == message_kind::goodbye_ack) {
      link.goodbye_acked = true;
    } else if (const auto hello = detail::parse_hello(m); !hello.ok()) {
      link.hello_answered = true;
      link.refusal = "receiver " + ep->describe(link.peer) + " sent a bad hello_ack: " + hello.error;
    } else {
      link.hello_answered = true;
      link.accepted = m.header().status == status::ok;
      link.terms = hello.terms;
      link.clock_offset_ns = detail::clock_offset(m, received_ns, hello.host == rt.host());
      if (!link.accepted)
        link.refusal = "kernel set mismatch with receiver " + ep->describe(link.peer) + ": " +
                       detail::kernel_set_difference(kernels.signature(), hello.signature, "this transmitter",
                                                     "receiver " + ep->describe(link.peer));
    }
  }
  link_cv.notify_all();
}

void transmitter::impl::send_keepalives(clock_type::time_point now) {
  next_keepalive_check = now + std::chrono::milliseconds(100);
  for (auto& l : links) {
    if (!l.accepted || l.goodbye_sent || l.keepalive == clock_type::duration::zero() || now - l.last_sent < l.keepalive)
      continue;
    ep->send(l.peer, detail::make_keepalive());
    l.last_sent = now;
  }
}

void transmitter::impl::accept_terms() {
  for (auto& l : links) {
    if (!l.accepted || !l.terms) continue;
    const auto& t = *l.terms;
    l.credits = std::min(cfg.credits, t.credits);
    if (l.credits < cfg.credits)
      offload::logger()->info("transmitter rank {}: receiver {} grants {} credits, fewer than the {} configured",
                              rt.rank(), ep->describe(l.peer), t.credits, cfg.credits);
    l.keepalive = detail::keepalive_interval(t);
    l.last_sent = clock_type::now();
    request_limits = detail::narrowed(request_limits, t.limits);
  }
}

void transmitter::impl::handshake() {
  const std::string signature = kernels.signature();
  rt.call([&] {
    for (const auto& l : links) {
      ep->send(l.peer, detail::make_hello(signature, detail::now_ns()));
    }
  });
  std::unique_lock lock(link_mutex);
  const bool answered = link_cv.wait_for(lock, cfg.handshake_timeout, [&] {
    for (const auto& l : links)
      if (!l.hello_answered) return false;
    return true;
  });
  if (!answered) {
    for (const auto& l : links)
      if (!l.hello_answered)
        throw handshake_error("receiver " + ep->describe(l.peer) + " did not answer the handshake within " +
                              std::to_string(cfg.handshake_timeout.count()) + " ms");
  }
}

void transmitter::impl::say_goodbye() {
  // A receiver set aside (a request to it timed out) may be stopped or dead, or only slow: it
  // acknowledges once the batch it is running is done, and a reply it sends after this side
  // stopped receiving is never taken (its rank then waits its idle timeout at the end). So it
  // is waited for too, but only ten request timeouts (at most handshake_timeout); then sends to
  // it are given up below.
  rt.call([&] {
    std::lock_guard lock(link_mutex);
    for (auto& l : links) {
      if (!l.accepted || l.goodbye_sent) continue;
      ep->send(l.peer, detail::make_goodbye());
      l.goodbye_sent = true;
    }
  });
  {
    const auto start = clock_type::now();
    const auto suspect_wait = std::min<clock_type::duration>(cfg.handshake_timeout, 10 * cfg.timeout);
    std::unique_lock lock(link_mutex);
    const auto all_acked = [&](bool suspects_too) {
      for (const auto& l : links)
        if (l.goodbye_sent && !l.goodbye_acked && (suspects_too || !l.suspect)) return false;
      return true;
    };
    link_cv.wait_until(lock, start + suspect_wait, [&] { return all_acked(true); });
    const bool acked = link_cv.wait_until(lock, start + cfg.handshake_timeout, [&] { return all_acked(false); });
    if (!acked)
      offload::logger()->warn("transmitter rank {}: not every receiver acknowledged goodbye within {} ms", rt.rank(),
                              cfg.handshake_timeout.count());
  }
  const bool drained = rt.call([&] {
    std::lock_guard lock(link_mutex);
    for (const auto& l : links)
      if (l.goodbye_sent && !l.goodbye_acked) ep->abandon(l.peer);
    return ep->drain_sends(5.0);
  });
  if (!drained) offload::logger()->warn("transmitter rank {}: sends still pending at close", rt.rank());
}

transmitter::transmitter(runtime& rt, const kernel_registry& kernels, const transport& link, transmitter_config config)
    : m_impl(std::make_shared<impl>(rt, kernels, link, std::move(config))) {
  start();
}

void transmitter::start() {
  auto& rt = m_impl->rt;
  rt.attach(*m_impl);
  try {
    m_impl->handshake();
  } catch (...) {
    close();
    throw;
  }
  std::string refusals;
  {
    std::lock_guard lock(m_impl->link_mutex);
    for (const auto& l : m_impl->links)
      if (!l.accepted) refusals += (refusals.empty() ? "" : "; ") + l.refusal;
  }
  if (!refusals.empty()) {
    close();
    throw handshake_error(refusals);
  }
  rt.call([&] { m_impl->accept_terms(); });
}

transmitter::~transmitter() {
  try {
    close();
  } catch (const std::exception& e) {
    offload::logger()->error("transmitter: close failed: {}", e.what());
  }
}

void transmitter::close() {
  auto& d = *m_impl;
  {
    std::unique_lock lock(d.delivered_mutex);
    if (d.closed) return;
    d.delivered_cv.wait(lock, [&] { return d.delivered_count == d.submitted_count; });
    d.closed = true;
  }
  d.say_goodbye();
  d.rt.detach(d);
  d.fallbacks->close();
}

}  // namespace offload
