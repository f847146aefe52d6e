// netdelay: holds every packet of an iptables NFQUEUE queue for a fixed time, then accepts it.
// The kernel here has no netem; this is the delay of scripts/netns/. Run it in the receiving
// namespace, on its INPUT chain (queuing on OUTPUT collapses TCP throughput):
//   iptables -A INPUT -i vb -p tcp -m multiport --ports 50000:50099 -j NFQUEUE --queue-num 0 --queue-bypass
//   netdelay --queue 0 --delay-ms 5
// Packets leave in arrival order. The queue is asked for GSO packets whole (NFQA_CFG_F_GSO):
// without that, TCP over veth tops out near 0.2 GB/s even at 0 ms. SIGINT/SIGTERM end it; with
// --queue-bypass the rule then lets packets through undelayed.
// glibc's networking headers first: they tell the kernel's uapi headers not to redefine in_addr.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>

#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter.h>
#include <linux/netlink.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string>

namespace {

volatile std::sig_atomic_t g_stop = 0;

struct held {
  std::uint32_t id;
  std::int64_t release_ns;
};

struct state {
  nfq_q_handle* queue = nullptr;
  std::deque<held> fifo;
  std::int64_t delay_ns = 0;
  std::uint64_t packets = 0;
};

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

int on_packet(nfq_q_handle*, nfgenmsg*, nfq_data* data, void* arg) {
  auto& s = *static_cast<state*>(arg);
  const nfqnl_msg_packet_hdr* hdr = nfq_get_msg_packet_hdr(data);
  if (hdr == nullptr) return 0;
  s.fifo.push_back({ntohl(hdr->packet_id), now_ns() + s.delay_ns});
  ++s.packets;
  return 0;
}

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "netdelay: %s: %s\n", what.c_str(), std::strerror(errno));
  std::exit(1);
}

void usage() {
  std::fprintf(stderr, "usage: netdelay --queue N --delay-ms D   (D >= 0, N in 0..65535)\n");
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  long queue_num = -1;
  double delay_ms = -1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) usage();
    char* end = nullptr;
    if (a == "--queue") {
      queue_num = std::strtol(argv[++i], &end, 10);
    } else if (a == "--delay-ms") {
      delay_ms = std::strtod(argv[++i], &end);
    } else {
      usage();
    }
    if (end == nullptr || *end != '\0') usage();
  }
  if (queue_num < 0 || queue_num > 65535 || !(delay_ms >= 0) || delay_ms > 60000) usage();

  state s;
  s.delay_ns = static_cast<std::int64_t>(delay_ms * 1e6);
  nfq_handle* h = nfq_open();
  if (h == nullptr) die("nfq_open (root and the nfnetlink_queue module are needed)");
  nfq_unbind_pf(h, AF_INET);  // older kernels want it; harmless otherwise
  if (nfq_bind_pf(h, AF_INET) < 0) die("nfq_bind_pf");
  s.queue = nfq_create_queue(h, static_cast<std::uint16_t>(queue_num), on_packet, &s);
  if (s.queue == nullptr) die("nfq_create_queue " + std::to_string(queue_num) + " (is another netdelay on it?)");
  if (nfq_set_mode(s.queue, NFQNL_COPY_META, 0) < 0) die("nfq_set_mode");
  if (nfq_set_queue_flags(s.queue, NFQA_CFG_F_GSO, NFQA_CFG_F_GSO) < 0) die("nfq_set_queue_flags(GSO)");
  if (nfq_set_queue_maxlen(s.queue, 1 << 16) < 0) die("nfq_set_queue_maxlen");
  const int fd = nfq_fd(h);
  int big = 64 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big);  // root: past rmem_max
  int one = 1;
  setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof one);

  std::signal(SIGINT, [](int) { g_stop = 1; });
  std::signal(SIGTERM, [](int) { g_stop = 1; });
  std::fprintf(stderr, "netdelay: queue %ld, delay %.3f ms\n", queue_num, delay_ms);

  alignas(8) static char buf[1 << 18];
  while (!g_stop) {
    // Release what is due, then wait for a packet or the next release.
    const std::int64_t now = now_ns();
    // Everything due goes in one batch verdict (it accepts every id up to the last one given;
    // ids grow in arrival order, which is release order).
    std::uint32_t last = 0;
    bool any = false;
    while (!s.fifo.empty() && s.fifo.front().release_ns <= now) {
      last = s.fifo.front().id;
      any = true;
      s.fifo.pop_front();
    }
    if (any) nfq_set_verdict_batch(s.queue, last, NF_ACCEPT);
    timespec timeout{};
    timespec* wait = nullptr;  // none held: wait for a packet
    if (!s.fifo.empty()) {
      const std::int64_t ns = s.fifo.front().release_ns - now;
      timeout.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
      timeout.tv_nsec = static_cast<long>(ns % 1'000'000'000);
      wait = &timeout;
    }
    pollfd p{fd, POLLIN, 0};
    const int r = ppoll(&p, 1, wait, nullptr);
    if (r < 0 && errno != EINTR) die("ppoll");
    if (r <= 0) continue;  // a release is due (or a signal came)
    const ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      if (errno == ENOBUFS) continue;  // the kernel dropped packets; TCP will resend
      die("recv");
    }
    nfq_handle_packet(h, buf, static_cast<int>(n));
  }
  // Let everything still held through before leaving.
  for (const auto& p : s.fifo) nfq_set_verdict(s.queue, p.id, NF_ACCEPT, 0, nullptr);
  std::fprintf(stderr, "netdelay: %llu packets delayed\n", static_cast<unsigned long long>(s.packets));
  nfq_destroy_queue(s.queue);
  nfq_close(h);
  return 0;
}
