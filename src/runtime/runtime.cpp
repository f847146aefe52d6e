#include <offload/mpi.hpp>
#include <offload/runtime.hpp>

#include "mpi_check.hpp"
#include "src/progress/engine.hpp"

#include <offload/log.hpp>

#include <array>
#include <atomic>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <sched.h>
#include <unistd.h>

namespace offload {

struct runtime::impl {
  explicit impl(const progress_options& o) : options(o), engine(o) {}
  progress_options options;
  int rank = -1;
  int size = 0;
  int local_rank = 0;
  int local_size = 1;
  std::string host;
  MPI_Comm comm = MPI_COMM_NULL;
  MPI_Comm adopted = MPI_COMM_NULL;          // the application's communicator, when it owns MPI
  std::atomic<bool> warned_one_core{false};  // attach() said that both threads share one core
  // Last: its thread uses the members above, so it stops first.
  detail::progress_engine engine;

  /// On the progress thread before it serves: MPI's initialisation (or adoption), rank, size,
  /// the node's ranks; without MPI, the host name only.
  void setup();
  void check_adoptable() const;
  void shutdown_mpi() noexcept;
  [[noreturn]] void fatal(const std::exception& e) noexcept;
};

namespace {
std::string thread_level_name(int level) {
  switch (level) {
    case MPI_THREAD_SINGLE: return "MPI_THREAD_SINGLE";
    case MPI_THREAD_FUNNELED: return "MPI_THREAD_FUNNELED";
    case MPI_THREAD_SERIALIZED: return "MPI_THREAD_SERIALIZED";
    case MPI_THREAD_MULTIPLE: return "MPI_THREAD_MULTIPLE";
    default: return "level " + std::to_string(level);
  }
}
}  // namespace

void runtime::impl::check_adoptable() const {
  int initialized = 0, finalized = 0, level = 0;
  OFFLOAD_MPI_CHECK(MPI_Initialized(&initialized));
  OFFLOAD_MPI_CHECK(MPI_Finalized(&finalized));
  if (!initialized || finalized)
    throw mpi_error(std::string("offload::adopt_mpi: MPI is ") + (finalized ? "already finalised" : "not initialised") +
                    "; the application must call MPI_Init_thread(..., MPI_THREAD_MULTIPLE, ...) first, or let the "
                    "runtime own MPI (construct it without adopt_mpi)");
  OFFLOAD_MPI_CHECK(MPI_Query_thread(&level));
  if (level != MPI_THREAD_MULTIPLE)
    throw mpi_error("offload::adopt_mpi: the application initialised MPI with " + thread_level_name(level) +
                    "; the library's progress thread calls MPI beside the application's threads, which needs "
                    "MPI_THREAD_MULTIPLE");
}

void runtime::impl::setup() {
  if (!options.mpi) {
    rank = 0;
    size = 1;
    std::array<char, 256> name{};
    if (gethostname(name.data(), name.size() - 1) == 0) host = name.data();
    return;
  }
  if (adopted != MPI_COMM_NULL) {
    check_adoptable();
    OFFLOAD_MPI_CHECK(MPI_Comm_dup(adopted, &comm));
  } else {
    int initialized = 0;
    OFFLOAD_MPI_CHECK(MPI_Initialized(&initialized));
    if (initialized)
      throw mpi_error(
          "MPI is already initialised: construct offload::runtime with offload::adopt_mpi{comm} "
          "(offload/mpi.hpp) to use the application's MPI");
    int provided = 0;
    const int wanted = options.thread_multiple ? MPI_THREAD_MULTIPLE : MPI_THREAD_FUNNELED;
    OFFLOAD_MPI_CHECK(MPI_Init_thread(nullptr, nullptr, wanted, &provided));
    if (provided < wanted) {
      MPI_Finalize();
      throw mpi_error("MPI provides thread level " + thread_level_name(provided) + ", " + thread_level_name(wanted) +
                      " is needed");
    }
    OFFLOAD_MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
    OFFLOAD_MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &comm));
  }
  OFFLOAD_MPI_CHECK(MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN));
  OFFLOAD_MPI_CHECK(MPI_Comm_rank(comm, &rank));
  OFFLOAD_MPI_CHECK(MPI_Comm_size(comm, &size));
  // The ranks on this node are those with this processor name: one allgather of the names.
  // (MPI_Comm_split_type(MPI_COMM_TYPE_SHARED) hung in Slurm heterogeneous steps whose
  // components run on one host under two node names.)
  std::vector<char> names(static_cast<std::size_t>(size) * MPI_MAX_PROCESSOR_NAME, '\0');
  std::vector<char> name(MPI_MAX_PROCESSOR_NAME, '\0');
  int len = 0;
  OFFLOAD_MPI_CHECK(MPI_Get_processor_name(name.data(), &len));
  host.assign(name.data(), static_cast<std::size_t>(len));
  OFFLOAD_MPI_CHECK(MPI_Allgather(name.data(), MPI_MAX_PROCESSOR_NAME, MPI_CHAR, names.data(), MPI_MAX_PROCESSOR_NAME,
                                  MPI_CHAR, comm));
  local_rank = 0;
  local_size = 0;
  for (int r = 0; r < size; ++r) {
    if (host != names.data() + static_cast<std::size_t>(r) * MPI_MAX_PROCESSOR_NAME) continue;
    if (r < rank) ++local_rank;
    ++local_size;
  }
}

void runtime::impl::fatal(const std::exception& e) noexcept {
  // An MPI failure inside the progress engine leaves MPI in an unknown state: end the job.
  // Nothing a peer sends may get here: clients answer bad input with error values (a
  // malformed or oversized message, 2 GiB and more included, is answered and dropped), so
  // anything else is this process's own failure (out of memory) or a bug.
  const bool mpi = dynamic_cast<const mpi_error*>(&e) != nullptr;
  offload::logger()->critical("progress thread of rank {}: {}{}", rank,
                              mpi ? "" : "unexpected exception (a bug?): ", e.what());
  if (options.mpi) MPI_Abort(adopted != MPI_COMM_NULL ? comm : MPI_COMM_WORLD, 3);
  std::_Exit(3);
}

void runtime::impl::shutdown_mpi() noexcept {
  if (comm != MPI_COMM_NULL) OFFLOAD_MPI_CHECK_NOEXCEPT(MPI_Comm_free(&comm));
  if (adopted == MPI_COMM_NULL) OFFLOAD_MPI_CHECK_NOEXCEPT(MPI_Finalize());
}

runtime::runtime(const adopt_mpi& app, const progress_options& options) : m_impl(std::make_unique<impl>(options)) {
  if (app.comm == MPI_COMM_NULL) throw mpi_error("offload::adopt_mpi: the communicator is MPI_COMM_NULL");
  m_impl->options.mpi = true;
  m_impl->adopted = app.comm;
  start();
}

runtime::runtime(const progress_options& options) : m_impl(std::make_unique<impl>(options)) {
  start();
}

void runtime::start() {
  impl& i = *m_impl;
  i.engine.start({[&i] { i.setup(); },
                  [&i] {
                    if (i.options.mpi) i.shutdown_mpi();
                  },
                  [&i](const std::exception& e) { i.fatal(e); }});
}

runtime::~runtime() = default;

int runtime::rank() const noexcept {
  return m_impl->rank;
}
int runtime::size() const noexcept {
  return m_impl->size;
}
int runtime::local_rank() const noexcept {
  return m_impl->local_rank;
}
int runtime::local_size() const noexcept {
  return m_impl->local_size;
}

namespace detail {
struct runtime_access {
  static MPI_Comm comm(const runtime& rt) noexcept { return rt.m_impl->comm; }
};
}  // namespace detail

MPI_Comm comm_of(const runtime& rt) noexcept {
  return detail::runtime_access::comm(rt);
}
const std::string& runtime::host() const noexcept {
  return m_impl->host;
}
bool runtime::on_progress_thread() const noexcept {
  return m_impl->engine.on_thread();
}

void runtime::post(std::function<void()> f) {
  m_impl->engine.post(std::move(f));
}

void runtime::wake() noexcept {
  m_impl->engine.wake();
}

namespace {
/// Polls `req` from the calling thread through the progress thread until it completes.
void complete(runtime& rt, MPI_Request& req) {
  for (;;) {
    int flag = 0;
    rt.call([&] { OFFLOAD_MPI_CHECK(MPI_Test(&req, &flag, MPI_STATUS_IGNORE)); });
    if (flag) return;
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}
}  // namespace

void runtime::barrier() {
  if (!m_impl->options.mpi) return;
  MPI_Request req = MPI_REQUEST_NULL;
  call([&] { OFFLOAD_MPI_CHECK(MPI_Ibarrier(m_impl->comm, &req)); });
  complete(*this, req);
}

bool runtime::all_agree(bool mine) {
  if (!m_impl->options.mpi) return mine;
  int in = mine ? 1 : 0, out = 0;
  MPI_Request req = MPI_REQUEST_NULL;
  call([&] { OFFLOAD_MPI_CHECK(MPI_Iallreduce(&in, &out, 1, MPI_INT, MPI_MIN, m_impl->comm, &req)); });
  complete(*this, req);
  return out == 1;
}

void runtime::abort(int code) noexcept {
  if (!m_impl->options.mpi) std::_Exit(code);
  MPI_Abort(m_impl->adopted != MPI_COMM_NULL ? m_impl->comm : MPI_COMM_WORLD, code);
  std::abort();
}

namespace {
/// The CPUs the calling thread may run on (Linux: its affinity mask); empty when unknown.
std::vector<int> this_thread_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return {};
  std::vector<int> cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  return cpus;
}
}  // namespace

void runtime::attach(progress_client& client) {
  const auto caller = this_thread_cpus();
  const auto progress = call([this, &client] {
    m_impl->engine.add(client);
    return this_thread_cpus();
  });
  // A launcher that binds a rank to one core (mpirun does with at most 2 ranks) puts the
  // progress thread and every thread the caller starts on it: they take turns.
  if (caller.size() == 1 && caller == progress && !m_impl->warned_one_core.exchange(true)) {
    offload::logger()->warn(
        "rank {}: the progress thread and this thread are bound to the same single core (CPU {}): the library's "
        "network work and this thread's (and the threads it starts) take turns on it; bind this rank to more "
        "cores (mpirun --bind-to none, or --map-by with more PEs per rank, srun --cpus-per-task)",
        m_impl->rank, caller.front());
  }
}

void runtime::detach(progress_client& client) {
  call([this, &client] { m_impl->engine.remove(client); });
}

}  // namespace offload
