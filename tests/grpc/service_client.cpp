// An outside client of a long-running gRPC receiver service (offload-serve): what the service
// tests (tests/grpc/service.sh) and the service benchmark (scripts/bench_service.sh) do to it.
//   churn     ADDRESS PID KIND SESSIONS [--slack-kib K]  sessions one after another (KIND: clean,
//             cancelled, silent or mixed); the service's resident memory sampled as they go
//   oversize  ADDRESS PID BYTES [--settle-ms M] [--slack-kib K]  one message of BYTES: how it is
//             refused, the service's memory while and after, and that it still serves
//   fairness  ADDRESS ELEMENTS ITERATIONS BURST  a burst of BURST synthetic requests from one
//             client, then one echo from another: where the echo's reply falls among the burst's
//   cancel    ADDRESS ELEMENTS ITERATIONS BURST  the same burst, its stream cancelled at once:
//             how long the other client's echo waits, against one request's time
//   junk      ADDRESS COUNT  COUNT malformed messages on one stream, each answered
//   noread    ADDRESS COUNT  COUNT malformed messages on one stream without reading the answers:
//             the service cuts the stream off instead of queueing answers without end
//   work      ADDRESS ELEMENTS ITERATIONS  one synthetic request: its reply or error (for --max-work)
//   session   ADDRESS KIND  one session of KIND: clean, cancelled, silent or badhello (a hello
//             whose kernel set does not match, answered with a refusing hello_ack)
// --peak-kib K (oversize): the service's peak while refusing may be at most K above before.
// Exit 0 when every check passed ("PASS: 0 failed checks"), 1 when one failed, 2 on bad arguments.
#include "src/session/handshake.hpp"
#include "src/transport/grpc_endpoint.hpp"
#include "tests/grpc/raw_stream.hpp"
#include "tests/proc_status.hpp"

#include <offload/kernel.hpp>
#include <offload/wire.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

using namespace offload;
using offload_test::raw_stream;
using clock_type = std::chrono::steady_clock;

namespace {

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

/// The resident memory of process `pid`, in KiB.
long rss_kib(long pid) {
  return offload_test::status_kib(pid, "VmRSS:");
}

const kernel_registry& kernels() {
  return kernel_registry::builtin();
}

buffer request(std::uint64_t id, std::string_view kernel, const std::vector<product>& ps) {
  return encode({message_kind::request, id, *kernels().id_of(kernel), status::ok}, product_views(ps));
}
std::vector<product> echo_inputs() {
  return {product::make("v", std::vector<float>{1, 2, 3, 4})};
}
std::vector<product> synthetic_inputs(std::uint64_t elements, std::uint64_t iterations) {
  return kernels().find("synthetic")->make_inputs({1, elements, iterations});
}

bool hello(raw_stream& s) {
  if (!s.send(detail::encode_hello(message_kind::hello, status::ok, kernels().signature()))) return false;
  auto ack = s.receive();
  return ack && ack->header().kind == message_kind::hello_ack && ack->header().status == status::ok;
}

/// One session of `kind` on `channel`; false when the service did not answer as it should.
bool session(const std::shared_ptr<grpc::Channel>& channel, const std::string& kind, std::uint64_t n) {
  raw_stream s(channel, detail::grpc_session_method);
  if (!s.started()) return false;
  if (kind == "silent") {
    s.cut();
    return true;
  }
  if (kind == "badhello") {
    if (!s.send(detail::encode_hello(message_kind::hello, status::ok, "nothing@1\n"))) return false;
    auto ack = s.receive();
    return ack && ack->header().kind == message_kind::hello_ack && ack->header().status != status::ok;
  }
  if (!hello(s)) return false;
  if (kind == "cancelled") {
    s.cut();
    return true;
  }
  if (!s.send(request(n, "echo", echo_inputs()))) return false;
  auto reply = s.receive();
  if (!reply || reply->header().kind != message_kind::reply) return false;
  if (!s.send(detail::make_goodbye())) return false;
  auto bye = s.receive();
  return bye && bye->header().kind == message_kind::goodbye_ack && s.finish().ok();
}

int churn(const std::string& address, long pid, const std::string& kind, std::uint64_t sessions, long slack_kib) {
  static const char* kinds[] = {"clean", "cancelled", "silent"};
  if (kind != "clean" && kind != "cancelled" && kind != "silent" && kind != "mixed")
    throw std::invalid_argument("churn: KIND is clean, cancelled, silent or mixed, not '" + kind + "'");
  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  const std::uint64_t warmup = std::max<std::uint64_t>(sessions / 10, 1);
  const std::uint64_t step = std::max<std::uint64_t>(sessions / 20, 1);
  const long start = rss_kib(pid);
  long warm = -1, peak_after = 0;
  std::uint64_t failed = 0;
  const auto t0 = clock_type::now();
  for (std::uint64_t i = 1; i <= sessions; ++i) {
    if (!session(channel, kind == "mixed" ? kinds[i % 3] : kind, i)) ++failed;
    if (i % step == 0 || i == warmup) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));  // let the service see the ends
      const long rss = rss_kib(pid);
      if (i == warmup) warm = rss;
      if (i > warmup) peak_after = std::max(peak_after, rss);
    }
  }
  // The ends of the last sessions are still being handled (a client that cancels at once
  // outruns the service), and freed memory goes back at the service's next trim.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  const long end = rss_kib(pid);
  const double per_session = 1024.0 * double(end - warm) / double(sessions - warmup);
  std::printf(
      "churn: %s: %llu sessions in %.1f s (%llu failed); service RSS KiB: start %ld, after %llu (warm-up) %ld, "
      "peak after warm-up %ld, end %ld: %+ld KiB after warm-up (%+.1f bytes per session), slack %ld KiB\n",
      kind.c_str(), (unsigned long long)sessions, seconds_since(t0), (unsigned long long)failed, start,
      (unsigned long long)warmup, warm, peak_after, end, end - warm, per_session, slack_kib);
  EXPECT(failed == 0, "%llu sessions were not answered as they should", (unsigned long long)failed);
  EXPECT(end - warm <= slack_kib, "the service's RSS grew %ld KiB after warm-up (slack %ld)", end - warm, slack_kib);
  return 0;
}

int oversize(const std::string& address, long pid, std::uint64_t bytes, long settle_ms, long slack_kib, long peak_kib) {
  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  // The level before: with this client's connection open and a session served on it.
  EXPECT(session(channel, "clean", 1), "the service does not serve a clean session");
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  const long before = rss_kib(pid);
  {
    buffer big(bytes);
    std::memset(big.data(), 0, bytes);
    const auto header = encode({message_kind::request, 77, *kernels().id_of("echo"), status::ok}, product_views{});
    std::memcpy(big.data(), header.data(), std::min<std::size_t>(header.size(), bytes));
    raw_stream s(channel, detail::grpc_session_method);
    EXPECT(hello(s), "no hello_ack");
    long peak = before;
    std::atomic<bool> sending{true};
    std::thread watch([&] {
      while (sending) {
        peak = std::max(peak, rss_kib(pid));
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    });
    const bool sent = s.send(big);
    auto answer = s.receive();
    sending = false;
    watch.join();
    std::string how;
    if (answer && answer->header().kind == message_kind::error)
      how = "error reply " + std::string(to_string(answer->header().status)) + ": " + error_text(answer->view());
    else if (answer)
      how = "answer " + std::string(to_string(answer->header().kind));
    else {
      const auto st = s.finish();
      how = "stream ended, gRPC code " + std::to_string(int(st.error_code())) + ": " + st.error_message();
    }
    std::printf("oversize: %llu bytes (%s): %s; service RSS KiB before %ld, peak while refusing %ld (%+ld)\n",
                (unsigned long long)bytes, sent ? "sent" : "send failed", how.c_str(), before, peak, peak - before);
    if (peak_kib > 0)
      EXPECT(peak - before <= peak_kib, "the service's RSS rose %ld KiB while refusing (bound %ld)", peak - before,
             peak_kib);
    // Refused by the receiver (too_large) or, over its gRPC memory bound, reset by gRPC.
    EXPECT(how.find("exceeds") != std::string::npos || how.find("RST_STREAM") != std::string::npos,
           "the refusal does not say the message is too large: %s", how.c_str());
  }
  // Resident memory back near its level before the message within settle_ms.
  const auto t0 = clock_type::now();
  long rss = rss_kib(pid);
  while (rss - before > slack_kib && seconds_since(t0) * 1000 < double(settle_ms)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    rss = rss_kib(pid);
  }
  std::printf("oversize: service RSS KiB %ld after %.0f ms (%+ld against before; slack %ld within %ld ms)\n", rss,
              seconds_since(t0) * 1000, rss - before, slack_kib, settle_ms);
  EXPECT(rss - before <= slack_kib, "the service still holds %ld KiB more than before after %ld ms", rss - before,
         settle_ms);
  EXPECT(session(channel, "clean", 1), "the service does not serve a clean session after the oversized message");
  return 0;
}

/// A client that sends a burst of synthetic requests and records when each reply arrives.
struct burst_client {
  raw_stream s;
  std::vector<clock_type::time_point> replies;
  std::thread reader;
  burst_client(const std::string& address, std::uint64_t elements, std::uint64_t iterations, std::uint64_t burst)
      : s(address, detail::grpc_session_method) {
    EXPECT(hello(s), "burst client: no hello_ack");
    const auto in = synthetic_inputs(elements, iterations);
    for (std::uint64_t i = 0; i < burst; ++i) EXPECT(s.send(request(100 + i, "synthetic", in)), "burst: send failed");
  }
  void read(std::uint64_t n) {
    reader = std::thread([this, n] {
      for (std::uint64_t i = 0; i < n; ++i) {
        auto r = s.receive();
        if (!r) break;
        EXPECT(r->header().kind == message_kind::reply, "burst: an answer is %s",
               std::string(to_string(r->header().kind)).c_str());
        replies.push_back(clock_type::now());
      }
    });
  }
};

/// One echo on a new session: the time from its send to its reply, and when the reply came.
std::pair<double, clock_type::time_point> echo_seconds(const std::string& address) {
  raw_stream s(address, detail::grpc_session_method);
  EXPECT(hello(s), "echo client: no hello_ack");
  const auto t0 = clock_type::now();
  EXPECT(s.send(request(1, "echo", echo_inputs())), "echo: send failed");
  auto r = s.receive();
  const auto t1 = clock_type::now();
  EXPECT(r && r->header().kind == message_kind::reply, "echo: no reply");
  return {std::chrono::duration<double>(t1 - t0).count(), t1};
}

double one_request_seconds(const std::string& address, std::uint64_t elements, std::uint64_t iterations) {
  raw_stream s(address, detail::grpc_session_method);
  EXPECT(hello(s), "no hello_ack");
  const auto t0 = clock_type::now();
  EXPECT(s.send(request(1, "synthetic", synthetic_inputs(elements, iterations))), "send failed");
  auto r = s.receive();
  EXPECT(r && r->header().kind == message_kind::reply, "no reply to one synthetic request");
  return seconds_since(t0);
}

int fairness(const std::string& address, std::uint64_t elements, std::uint64_t iterations, std::uint64_t burst) {
  const double one = one_request_seconds(address, elements, iterations);
  burst_client a(address, elements, iterations, burst);
  a.read(burst);
  const auto [echo, echo_at] = echo_seconds(address);
  a.reader.join();
  std::size_t before_echo = 0;
  for (const auto& t : a.replies) before_echo += t < echo_at ? 1 : 0;
  std::printf(
      "fairness: one synthetic request %.3f s; a burst of %llu from one client, then an echo from another: the echo "
      "waited %.3f s (%.1f requests' time), %zu of the burst's replies came before it\n",
      one, (unsigned long long)burst, echo, echo / one, before_echo);
  EXPECT(a.replies.size() == burst, "the burst got %zu replies of %llu", a.replies.size(), (unsigned long long)burst);
  // Round robin: the echo waits for the request running when it came, not for the burst.
  EXPECT(before_echo <= 1, "%zu of the burst's requests ran before the other client's echo", before_echo);
  return 0;
}

int cancel(const std::string& address, std::uint64_t elements, std::uint64_t iterations, std::uint64_t burst) {
  const double one = one_request_seconds(address, elements, iterations);
  {
    burst_client a(address, elements, iterations, burst);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the burst is queued at the service
    a.s.cut();
  }
  const double echo = echo_seconds(address).first;
  std::printf(
      "cancel: one synthetic request %.3f s; a burst of %llu cancelled at once, then an echo from another client: "
      "it waited %.3f s (%.1f requests' time)\n",
      one, (unsigned long long)burst, echo, echo / one);
  // Generous: the work of the cancelled client, had it run, would take (burst - 1) requests' time.
  EXPECT(echo < double(burst - 1) * one, "the echo waited %.3f s, as if the cancelled work had run", echo);
  return 0;
}

int junk(const std::string& address, std::uint64_t count) {
  raw_stream s(address, detail::grpc_session_method);
  const buffer garbage = offload_test::garbage();
  std::uint64_t answered = 0;
  for (std::uint64_t i = 0; i < count; ++i) {
    if (!s.send(garbage)) break;
    auto r = s.receive();
    answered += r && r->header().status == status::malformed ? 1 : 0;
  }
  std::printf("junk: %llu malformed messages sent, %llu answered 'malformed'\n", (unsigned long long)count,
              (unsigned long long)answered);
  EXPECT(answered == count, "%llu of %llu junk messages were answered", (unsigned long long)answered,
         (unsigned long long)count);
  return 0;
}

int noread(const std::string& address, std::uint64_t count) {
  raw_stream s(address, detail::grpc_session_method);
  const buffer garbage = offload_test::garbage();
  std::uint64_t sent = 0;
  while (sent < count && s.send(garbage)) ++sent;
  std::uint64_t answers = 0;
  while (s.receive()) ++answers;  // what was written before the cut, then the end
  const auto st = s.finish();
  std::printf(
      "noread: %llu malformed messages sent without reading, then %llu answers read before the stream ended "
      "(gRPC code %d: %s)\n",
      (unsigned long long)sent, (unsigned long long)answers, int(st.error_code()), st.error_message().c_str());
  EXPECT(answers < count, "every answer was kept for a client that did not read");
  return 0;
}

int work(const std::string& address, std::uint64_t elements, std::uint64_t iterations) {
  raw_stream s(address, detail::grpc_session_method);
  EXPECT(hello(s), "no hello_ack");
  EXPECT(s.send(request(5, "synthetic", synthetic_inputs(elements, iterations))), "send failed");
  auto r = s.receive();
  EXPECT(r.has_value(), "no answer");
  if (r && r->header().kind == message_kind::error)
    std::printf("work: error reply %s: %s\n", std::string(to_string(r->header().status)).c_str(),
                error_text(r->view()).c_str());
  else if (r)
    std::printf("work: %s\n", std::string(to_string(r->header().kind)).c_str());
  return 0;
}

std::uint64_t number(const std::string& s, const char* what) {
  std::size_t used = 0;
  const auto v = std::stoull(s, &used);
  if (used != s.size()) throw std::invalid_argument(std::string(what) + " '" + s + "' is not a number");
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> a(argv + 1, argv + argc);
  long slack_kib = 1024, settle_ms = 1000, peak_kib = 0;
  for (std::size_t i = 0; i + 1 < a.size();) {
    if (a[i] == "--slack-kib" || a[i] == "--settle-ms" || a[i] == "--peak-kib") {
      (a[i] == "--slack-kib"   ? slack_kib
       : a[i] == "--settle-ms" ? settle_ms
                               : peak_kib) = long(number(a[i + 1], a[i].c_str()));
      a.erase(a.begin() + long(i), a.begin() + long(i) + 2);
    } else {
      ++i;
    }
  }
  try {
    const std::string cmd = a.empty() ? "" : a[0];
    if (cmd == "churn" && a.size() == 5)
      churn(a[1], long(number(a[2], "PID")), a[3], number(a[4], "SESSIONS"), slack_kib);
    else if (cmd == "oversize" && a.size() == 4)
      oversize(a[1], long(number(a[2], "PID")), number(a[3], "BYTES"), settle_ms, slack_kib, peak_kib);
    else if ((cmd == "fairness" || cmd == "cancel") && a.size() == 5)
      (cmd == "fairness" ? fairness : cancel)(a[1], number(a[2], "ELEMENTS"), number(a[3], "ITERATIONS"),
                                              number(a[4], "BURST"));
    else if (cmd == "junk" && a.size() == 3)
      junk(a[1], number(a[2], "COUNT"));
    else if (cmd == "session" && a.size() == 3)
      EXPECT(session(grpc::CreateChannel(a[1], grpc::InsecureChannelCredentials()), a[2], 1),
             "the %s session was not answered as it should", a[2].c_str());
    else if (cmd == "noread" && a.size() == 3)
      noread(a[1], number(a[2], "COUNT"));
    else if (cmd == "work" && a.size() == 4)
      work(a[1], number(a[2], "ELEMENTS"), number(a[3], "ITERATIONS"));
    else
      throw std::invalid_argument("usage: see the head of tests/grpc/service_client.cpp");
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "service_client: %s\n", e.what());
    return 2;
  }
  std::printf("%s: %d failed checks\n", offload_test::failures == 0 ? "PASS" : "FAIL", offload_test::failures);
  return offload_test::failures == 0 ? 0 : 1;
}
