// Each receiver's session: hello and its terms, keepalives, reconnects, goodbye; opening and
// closing the transmitter (transmitter_impl.hpp lists the other units).
#include "transmitter_impl.hpp"

#include "src/base/clock.hpp"
#include "src/session/handshake.hpp"

#include <offload/log.hpp>

namespace offload {

using detail::clock_type;
using detail::link_state;
using detail::receiver_link;

namespace {
constexpr auto first_backoff = std::chrono::milliseconds(100);
}

void transmitter::impl::say_hello(receiver_link& link) {
  {
    std::lock_guard lock(link_mutex);
    link.state = link_state::connecting;
  }
  ep->send(link.peer, detail::make_hello(signature, detail::now_ns()));
  link.last_sent = clock_type::now();
}

void transmitter::impl::handle_session(receiver_link& link, const message& m, std::uint64_t received_ns) {
  if (m.header().kind == message_kind::goodbye_ack) {
    {
      std::lock_guard lock(link_mutex);
      if (link.state == link_state::closing) link.state = link_state::closed;
    }
    link_cv.notify_all();
    return;
  }
  // A hello_ack answers the hello of this connection only while it waits for one (a late one,
  // after goodbye was sent to a receiver that had not answered, is ignored).
  if (link.state == link_state::connecting) open_session(link, m, received_ns);
  link_cv.notify_all();
}

void transmitter::impl::open_session(receiver_link& link, const message& m, std::uint64_t received_ns) {
  const std::string who = "receiver " + ep->describe(link.peer);
  const auto hello = detail::parse_hello(m);
  std::lock_guard lock(link_mutex);
  if (!hello.ok()) {
    link.state = link_state::refused;
    link.problem = who + " sent a bad hello_ack: " + hello.error;
    return;
  }
  link.missing = detail::kernels_not_offered(signature, hello.signature, "this transmitter", who);
  if (m.header().status != status::ok) {
    link.state = link_state::refused;
    link.problem = who + " has none of this transmitter's kernels: " + link.missing;
    return;
  }
  link.state = link_state::open;
  link.kernel_ids = detail::kernel_map(signature, hello.signature);
  link.terms = hello.terms;
  link.clock_offset_ns = detail::clock_offset(m, received_ns, hello.host == rt.host());
  link.credits = std::min(cfg.credits, hello.terms->credits);
  if (link.credits < cfg.credits)
    offload::logger()->info("transmitter rank {}: {} grants {} credits, fewer than the {} configured", rt.rank(), who,
                            hello.terms->credits, cfg.credits);
  link.keepalive = detail::keepalive_interval(*hello.terms);
  link.last_sent = clock_type::now();
  link.backoff = std::chrono::milliseconds(0);
  link.suspect = false;
  link.problem.clear();
  if (++link.sessions > 1) {
    count([](transmitter_stats& s) { s.reconnects += 1; });
    offload::logger()->info("transmitter rank {}: {} is back: in session again", rt.rank(), who);
  } else if (started) {
    offload::logger()->info("transmitter rank {}: {} answered: in session", rt.rank(), who);
  }
  if (started && !link.missing.empty())
    offload::logger()->warn(
        "transmitter rank {}: {} does not serve {}: those requests go to other receivers or "
        "fall back",
        rt.rank(), who, link.missing);
}

void transmitter::impl::lose_session(std::size_t li, const std::string& reason) {
  auto& l = links[li];
  {
    std::lock_guard lock(link_mutex);
    switch (l.state) {
      case link_state::closing: l.state = link_state::closed; break;  // no goodbye_ack can come now
      case link_state::open:
        offload::logger()->warn(
            "transmitter rank {}: {}; its requests go to other receivers or fall back until it "
            "is back",
            rt.rank(), reason);
        count([](transmitter_stats& s) { s.sessions_lost += 1; });
        [[fallthrough]];
      case link_state::connecting:
        if (l.state == link_state::connecting)
          offload::logger()->debug("transmitter rank {}: cannot reach receiver {}: {}", rt.rank(), ep->describe(l.peer),
                                   reason);
        l.problem =
            l.state == link_state::open ? reason : "cannot reach receiver " + ep->describe(l.peer) + ": " + reason;
        l.state = link_state::down;
        l.backoff = l.backoff.count() == 0 ? first_backoff : std::min(2 * l.backoff, cfg.reconnect_max);
        l.retry_at = clock_type::now() + l.backoff;
        break;
      default: break;
    }
    l.suspect = false;
  }
  link_cv.notify_all();
  // Requests in flight to it get no reply: they fall back now, not at their timeout.
  for (auto it = in_flight.begin(); it != in_flight.end();) {
    if (it->second != li) {
      ++it;
      continue;
    }
    --l.outstanding;
    const auto lv = live.find(it->first);
    it = in_flight.erase(it);
    if (lv == live.end()) continue;
    request_ptr r = std::move(lv->second);
    live.erase(lv);
    fall_back(std::move(r), fallback_reason::error_reply, reason);
  }
}

void transmitter::impl::reconnect_due(clock_type::time_point now) {
  if (closing) return;
  for (auto& l : links) {
    if (l.state != link_state::down || now < l.retry_at) continue;
    if (!ep->reconnect(l.peer)) {  // (MPI: a rank whose session ended is not greeted again)
      std::lock_guard lock(link_mutex);
      l.retry_at = clock_type::time_point::max();
      continue;
    }
    say_hello(l);
  }
}

void transmitter::impl::tend_sessions(clock_type::time_point now) {
  next_session_check = now + std::chrono::milliseconds(50);
  reconnect_due(now);
  for (auto& l : links) {
    if (l.state != link_state::open || l.keepalive == clock_type::duration::zero() || now - l.last_sent < l.keepalive)
      continue;
    ep->send(l.peer, detail::make_keepalive());
    l.last_sent = now;
  }
}

std::vector<transmitter::impl::start_problem> transmitter::impl::handshake() {
  rt.call([&] {
    for (auto& l : links) say_hello(l);
  });
  std::unique_lock lock(link_mutex);
  // Each receiver's first answer, or its first failure (one that cannot be reached is then
  // retried in the background: not waited for).
  link_cv.wait_for(lock, cfg.handshake_timeout, [&] {
    for (const auto& l : links)
      if (l.state == link_state::connecting && l.problem.empty() && l.sessions == 0) return false;
    return true;
  });
  std::vector<start_problem> problems;
  for (const auto& l : links) {
    const std::string who = "receiver " + ep->describe(l.peer);
    if (l.state == link_state::open) {
      if (!l.missing.empty())
        problems.push_back({who + " does not serve " + l.missing,
                            "requests for those kernels go to other receivers or fall back to the local CPU"});
    } else if (l.state == link_state::refused) {
      problems.push_back({l.problem, "no request goes to it"});
    } else {
      problems.push_back({l.problem.empty() ? who + " did not answer the handshake within " +
                                                  std::to_string(cfg.handshake_timeout.count()) + " ms"
                                            : l.problem,
                          "its requests go to other receivers or fall back to the local CPU until it is in session "
                          "(the handshake goes on in the background)"});
    }
  }
  // Submit checks requests against the limits of every receiver in session now.
  for (const auto& l : links)
    if (l.state == link_state::open) request_limits = detail::narrowed(request_limits, l.terms->limits);
  return problems;
}

void transmitter::impl::say_goodbye() {
  // A receiver set aside (a request to it timed out) may be stopped or dead, or only slow: it
  // acknowledges once the batch it is running is done, and a reply it sends after this side
  // stopped receiving is never taken (its rank then waits its idle timeout at the end). So it
  // is waited for too, but only ten request timeouts (at most handshake_timeout); then sends to
  // it are given up below. A receiver that never answered the hello gets a goodbye too, so that
  // it does not wait out its idle timeout for this side once it starts, but is not waited for.
  rt.call([&] {
    std::lock_guard lock(link_mutex);
    closing = true;
    for (auto& l : links) {
      if (l.state != link_state::open && l.state != link_state::connecting) continue;
      ep->send(l.peer, detail::make_goodbye());
      l.state = l.state == link_state::open ? link_state::closing : link_state::closed;
    }
  });
  {
    const auto start = clock_type::now();
    const auto suspect_wait = std::min<clock_type::duration>(cfg.handshake_timeout, 10 * cfg.timeout);
    std::unique_lock lock(link_mutex);
    const auto all_acked = [&](bool suspects_too) {
      for (const auto& l : links)
        if (l.state == link_state::closing && (suspects_too || !l.suspect)) return false;
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
    for (auto& l : links)
      if (l.state == link_state::closing) {
        ep->abandon(l.peer);
        l.state = link_state::closed;
      }
    return ep->drain_sends(5.0);
  });
  if (!drained) offload::logger()->warn("transmitter rank {}: sends still pending at close", rt.rank());
}

transmitter::transmitter(runtime& rt, const kernel_registry& kernels, const transport& link, transmitter_config config)
    : m_impl(std::make_shared<impl>(rt, kernels, link, std::move(config))) {
  start();
}

void transmitter::start() {
  auto& d = *m_impl;
  d.rt.attach(d);
  const auto problems = d.handshake();
  if (!problems.empty() && d.cfg.require_receivers) {
    close();
    std::string text;
    for (const auto& p : problems) (text += text.empty() ? "" : "; ") += p.what;
    throw handshake_error(text);
  }
  for (const auto& p : problems) offload::logger()->warn("transmitter rank {}: {}: {}", d.rt.rank(), p.what, p.then);
  d.rt.call([&] { d.started = true; });
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
