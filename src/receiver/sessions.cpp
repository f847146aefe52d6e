// The receiver's sessions: one per peer, from hello to goodbye (or the idle drop, or the end of
// its stream), with its credits and the warnings about its bad input (docs/protocol.md section 6).
#include "receiver_impl.hpp"

#include "src/base/clock.hpp"

#include <offload/log.hpp>

#include <algorithm>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace offload {

void receiver::impl::handle_hello(int source, const message& m) {
  auto& p = peers[source];
  if (p.hello && !p.finished) {
    send_error(source, m.header().request_id, status::unexpected_kind, "second hello in the same session");
    return;
  }
  const auto hello = detail::parse_hello(m);
  if (!hello.ok()) {
    count([](receiver_stats& s) { s.malformed += 1; });
    warn_about(source, "bad hello from " + ep->describe(source) + ": " + hello.error);
    send_error(source, m.header().request_id, status::malformed, "bad hello: " + hello.error);
    return;
  }
  const auto owed = p.outstanding;  // requests of a dropped session still running
  p = peer_state{};                 // a rank that said goodbye (or was dropped) may start a new session
  p.outstanding = owed;
  p.last_heard = steady::now();
  p.client = ep->client_of(source);
  // A transmitter may call the kernels of its hello that are here in the same version; a
  // receiver may have more (docs/protocol.md section 6.1).
  const std::string& theirs = hello.signature;
  const std::string ours = kernels.signature();
  p.offered.assign(kernels.size(), false);
  for (const auto id : detail::kernel_map(theirs, ours))
    if (id >= 0) p.offered[static_cast<std::size_t>(id)] = true;
  const bool match = std::find(p.offered.begin(), p.offered.end(), true) != p.offered.end();
  const auto t = terms();
  ep->send(source, detail::make_hello_ack(m, match, ours, rt.host(), t, detail::now_ns()));
  const auto them = "transmitter " + ep->describe(source);
  const auto lacking = detail::kernels_not_offered(theirs, ours, them, "this receiver");
  if (match) {
    p.hello = true;
    if (!lacking.empty())
      offload::logger()->info("{}: {} has kernels this receiver does not serve: {}", self, them, lacking);
    return;
  }
  warn_about(source, "no kernel in common with " + them + ": " + lacking);
  count([](receiver_stats& s) { s.handshake_failures += 1; });
  finish_peer(source, p, false);
}

void receiver::impl::handle_closed(int source, const std::string& reason) {
  // (gRPC) its stream ended: a peer still in session is gone, and never comes back.
  trim_due = true;
  auto it = peers.find(source);
  if (it == peers.end()) {  // it never said hello nor sent a request
    forget(source);
    return;
  }
  auto& p = it->second;
  p.closed = true;
  if (p.hello && !p.finished) drop_peer(source, p, "closed its connection (" + reason + ")", true);
  drop_queued_work(source, p);  // (a peer that said goodbye has none queued any more)
  forget_if_done(source);
}

void receiver::impl::handle_goodbye(int source, std::uint64_t id) {
  auto& p = peers[source];
  if (!p.hello || p.goodbye) {
    send_error(source, id, status::no_handshake,
               p.dropped ? "goodbye after this receiver dropped the session" : "goodbye without a hello before it");
    return;
  }
  p.goodbye = true;
  // It waits for nothing more: requests still queued were given up (timed out) on its side.
  drop_queued_work(source, p);
  maybe_finish(source, p);
}

void receiver::impl::maybe_finish(int source, peer_state& p) {
  if (!p.goodbye || p.finished || p.outstanding != 0) return;
  ep->send(source, detail::make_goodbye_ack());
  finish_peer(source, p, true);
}

void receiver::impl::finish_peer(int peer, peer_state& p, bool served) {
  p.finished = true;
  // A job's own receivers count every peer once, whatever the outcome (a transmitter turned
  // away does not try again); a shared service counts the sessions it served, so that a client
  // that fails the handshake or leaves at once does not use up its expected sessions.
  if (!served && !cfg.count_every_peer) return;
  ++peers_finished;
  // Sessions a front end opens for clients of another protocol (KServe v2) are counted, but
  // are not the transmitters the receiver waits for.
  if (ep->expected(peer)) ++expected_finished;
  count([&](receiver_stats& s) { s.peers_finished = peers_finished; });
}

void receiver::impl::housekeeping() {
  const auto now = steady::now();
  if (now < next_housekeeping) return;
  next_housekeeping = now + std::chrono::milliseconds(100);
  if (cfg.idle_timeout.count() > 0) next_housekeeping = std::min(next_housekeeping, now + cfg.idle_timeout / 10);
  for (auto& [peer, w] : warnings)
    if (w.held > 0 && now >= w.next_report) report_held_warnings(peer, w);
  if (trim_due && now - last_trim >= std::chrono::milliseconds(500)) {
#if defined(__GLIBC__)
    malloc_trim(0);  // free pages inside the heap too, not only its top
#endif
    trim_due = false;
    last_trim = now;
  }
  if (cfg.idle_timeout.count() <= 0) return;
  for (auto& [peer, p] : peers) {
    // (A peer that said goodbye is waiting for us, not gone: its last replies are still owed.)
    if (!p.hello || p.goodbye || p.finished || now - p.last_heard < cfg.idle_timeout) continue;
    drop_peer(peer, p, "sent nothing for " + std::to_string(cfg.idle_timeout.count()) + " ms");
  }
}

void receiver::impl::drop_peer(int peer, peer_state& p, const std::string& why, bool closed) {
  const auto abandoned = ep->abandon(peer);
  // A client that closes its connection is a service's daily life (info); one that falls
  // silent without closing it is not (warning).
  offload::logger()->log(
      closed ? spdlog::level::info : spdlog::level::warn,
      "{}: transmitter {} {}: dropping it, reclaiming its {} credit(s) in use, giving up {} repl(ies) it "
      "has not taken and discarding any still being computed",
      self, ep->describe(peer), why, p.outstanding, abandoned);
  p.hello = false;
  p.dropped = true;
  count([&](receiver_stats& s) {
    s.peers_dropped += 1;
    s.replies_discarded += abandoned;
  });
  drop_queued_work(peer, p);
  finish_peer(peer, p, p.requests > 0);
}

std::size_t receiver::impl::drop_queued_work(int peer, peer_state& p) {
  const auto tickets = sched.remove_peer(peer);
  for (auto t : tickets) waiting_jobs.erase(t);
  const std::size_t dropped = tickets.size();
  if (dropped == 0) return 0;
  p.outstanding -= static_cast<std::uint32_t>(dropped);
  utilisation(0, -long(dropped));
  count([&](receiver_stats& s) { s.work_dropped += dropped; });
  offload::logger()->info("{}: dropped {} queued request(s) of transmitter {}, which no longer waits for them", self,
                          dropped, ep->describe(peer));
  return dropped;
}

void receiver::impl::forget_if_done(int peer) {
  // Over gRPC every session is a new peer: what is kept about one goes when its stream has
  // ended and nothing is owed to it, so that a service's memory does not grow with sessions.
  auto it = peers.find(peer);
  if (it == peers.end() || !it->second.closed || it->second.outstanding != 0) return;
  forget(peer);
}

void receiver::impl::forget(int peer) {
  peers.erase(peer);
  if (auto w = warnings.find(peer); w != warnings.end()) {
    report_held_warnings(peer, w->second);
    warnings.erase(w);
  }
  ep->forget(peer);
}

void receiver::impl::warn_about(int peer, const std::string& text) {
  auto& w = warnings[peer];
  if (w.logged < first_warnings) {
    ++w.logged;
    offload::logger()->warn("{}: {}", self, text);
    if (w.logged == first_warnings) {
      offload::logger()->warn("{}: {} warnings about {}: further ones are counted and reported every {} s", self,
                              first_warnings, ep->describe(peer), warning_period.count());
      w.next_report = steady::now() + warning_period;
    }
    return;
  }
  ++w.held;
  w.last = text;
  if (steady::now() >= w.next_report) report_held_warnings(peer, w);
}

void receiver::impl::report_held_warnings(int peer, warning_count& w) {
  if (w.held == 0) return;
  offload::logger()->warn("{}: {} more warning(s) about {} (not logged one by one); the last: {}", self, w.held,
                          ep->describe(peer), w.last);
  w.held = 0;
  w.next_report = steady::now() + warning_period;
}

}  // namespace offload
