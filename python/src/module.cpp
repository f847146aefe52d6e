// mpi_offload._core: the library's C++ API for Python (pybind11). docs/python.md is the user's
// view; this file's rules:
//   - the GIL is released around every call into the library that may wait (construction,
//     submit, close, stats, wait) and never taken on the progress thread: results and the
//     inputs' references go through one delivery thread of this module (the deliverer), which
//     takes the GIL once per batch of results to resolve futures, call callbacks and drop
//     references; except a future's result (fast_wait): the library thread hands it to a
//     thread waiting in the future's result(), or parks it for the next result()/done() to
//     take, and the deliverer delivers a parked one only when nobody took it within 100 us;
//   - inputs are submitted without a copy (shared_products): the views point into the numpy
//     arrays, whose references the owner holds until the library lets go of them;
//   - results are numpy arrays over the reply's own bytes: their base is a Reply object that
//     owns the offload::result;
//   - Python kernels (python_kernel) take the GIL only around the Python call;
//   - at interpreter exit (mpi_offload's atexit hook: _shutdown) every transmitter, receiver
//     and runtime still open is closed, then the deliverer stops; from then on nothing here
//     touches Python from a library thread.
#include <offload/grpc.hpp>
#include <offload/kernel.hpp>
#include <offload/log.hpp>
#include <offload/mpi.hpp>
#include <offload/plugin.hpp>
#include <offload/receiver.hpp>
#include <offload/stats.hpp>
#include <offload/transmitter.hpp>
#if OFFLOAD_PY_KSERVE
#include <offload/kserve.hpp>
#endif
#if OFFLOAD_PY_MODELS
#include <offload/models.hpp>
#endif

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace py = pybind11;
using namespace py::literals;

namespace {

// ---- process state -------------------------------------------------------------------------

/// Set by _shutdown (atexit): library threads no longer touch Python from then on.
std::atomic<bool> g_finalizing{false};

/// Python objects the module needs from mpi_offload/__init__.py (set by _set_types; leaked on
/// purpose: they live as long as the interpreter).
struct python_types {
  PyObject* result = nullptr;         // mpi_offload.Result (a dict subclass)
  PyObject* resolve_async = nullptr;  // mpi_offload._resolve_async(fut, value, is_exception)
  PyObject* future = nullptr;         // mpi_offload.Future (a concurrent.futures.Future)
  PyObject* running_loop = nullptr;   // asyncio.get_running_loop
  PyObject* bf16 = nullptr;           // ml_dtypes.bfloat16's dtype, or None
  PyObject* request_error = nullptr;  // mpi_offload.RequestError
};
python_types g_types;

PyObject* interned(const char* s) {
  return PyUnicode_InternFromString(s);  // a new reference, kept for the process
}

/// Runs `f` without the GIL when the calling thread holds it (library calls that may wait).
template <class F> auto without_gil(F&& f) {
  if (PyGILState_Check() != 0) {
    py::gil_scoped_release nogil;
    return f();
  }
  return f();
}

// ---- the deliverer: the one thread that hands results to Python ----------------------------

/// Something whose destruction needs the GIL (references to Python objects).
struct gil_owned {
  virtual ~gil_owned() = default;
};

struct delivery_count;

/// A result on its way to Python: a concurrent.futures.Future, a callback, or an asyncio
/// (loop, future) pair.
enum class target_kind : std::uint8_t { future, callback, async };
struct fast_wait;
struct delivery {
  PyObject* target = nullptr;  // a reference of its own
  target_kind kind = target_kind::future;
  std::shared_ptr<offload::result> result;
  std::shared_ptr<delivery_count> count;
  std::shared_ptr<fast_wait> parked;  // set alone: the delivery is parked there (fast_wait::hand)
};

/// Deliveries a transmitter has submitted that Python has not had yet (its close waits for 0).
struct delivery_count {
  std::mutex m;
  std::condition_variable cv;
  std::int64_t outstanding = 0;
  void add(std::int64_t n) {
    std::lock_guard lk(m);
    outstanding += n;
    if (outstanding == 0) cv.notify_all();
  }
  void wait_zero() {
    std::unique_lock lk(m);
    cv.wait(lk, [&] { return outstanding == 0; });
  }
};

py::object make_result_object(std::shared_ptr<offload::result> r);

/// A future's result on its way to the thread that asks for it (mpi_offload.Future's result(),
/// exception(), done(), add_done_callback: wait_request). The deliverer's path costs the
/// waiting thread two more wake-ups and a GIL hand-over than the C++ API's future.get()
/// (results/python.md); here the library thread hands the delivery straight to a thread
/// waiting in result(), or, when none waits yet, parks it for the next one to take on its own
/// thread, without waiting. The deliverer delivers a parked result only when nobody took it
/// within `grace` (for concurrent.futures.wait, as_completed, a future nobody asks), and at
/// once when the future has done-callbacks (`eager`).
struct fast_wait {
  static constexpr auto grace = std::chrono::microseconds(100);
  enum class state : std::uint8_t {
    idle,     // no result yet, no thread waiting
    waiting,  // a thread waits in wait_request
    handed,   // the result is in `result`, for the waiting thread
    parked,   // the result is in `result`, nobody waits: the next to ask or the deliverer takes it
    gone      // delivered, or being delivered
  };
  std::mutex m;
  std::condition_variable cv;
  state s = state::idle;
  std::optional<delivery> result;
  std::chrono::steady_clock::time_point parked_at;
  bool eager = false;  // done-callbacks wait: no parking

  enum class handoff : std::uint8_t {
    handed,  // to the waiting thread
    parked,  // the caller queues a token for the deliverer
    usual    // eager: the caller delivers `d` the usual way
  };
  /// On the library thread: hands `d` to the waiting thread, parks it, or leaves it.
  handoff hand(delivery& d) {
    std::unique_lock lk(m);
    if (s != state::waiting && eager) {
      s = state::gone;
      return handoff::usual;
    }
    result.emplace(std::move(d));
    if (s == state::waiting) {
      s = state::handed;
      lk.unlock();
      cv.notify_one();
      return handoff::handed;
    }
    s = state::parked;
    parked_at = std::chrono::steady_clock::now();
    return handoff::parked;
  }
  /// With `m` held: the result if it is here (handed or parked), now `gone`.
  std::optional<delivery> take() {
    std::optional<delivery> d;
    if (s == state::handed || s == state::parked) {
      d.swap(result);
      s = state::gone;
    }
    return d;
  }
};

class deliverer {
 public:
  static deliverer& get() {
    static deliverer* d = new deliverer();  // never destroyed: library threads may call it until exit
    return *d;
  }
  /// Starts the thread (from a thread holding the GIL).
  void ensure_started() {
    std::lock_guard lk(m_mutex);
    if (m_started || m_stopped) return;
    m_started = true;
    m_thread = std::thread([this] { run(); });
  }
  bool on_thread() const noexcept { return m_started && std::this_thread::get_id() == m_thread.get_id(); }
  void push(delivery d) {
    {
      std::lock_guard lk(m_mutex);
      if (!m_stopped) {
        m_deliveries.push_back(std::move(d));
        m_cv.notify_one();
        return;
      }
    }
    // After _shutdown: the interpreter is going away; the reference is leaked on purpose.
    if (d.count) d.count->add(-1);
  }
  /// Destroys `p` with the GIL: now when this thread holds it, else on the delivery thread.
  void dispose(std::unique_ptr<gil_owned> p) {
    if (!p) return;
    if (!g_finalizing.load() && PyGILState_Check() != 0) return p.reset();
    std::lock_guard lk(m_mutex);
    if (m_stopped || !m_started) {
      (void)p.release();  // after _shutdown: leaked, Python is finalizing
      return;
    }
    m_garbage.push_back(std::move(p));
    if (m_garbage.size() >= 1024) m_cv.notify_one();  // else collected with the next delivery, or within 20 ms
  }
  /// Delivers `d` on the calling thread (a library thread), taking the GIL, and drops the
  /// references waiting for it: no hand-off to the delivery thread.
  void deliver_here(delivery d) {
    thread_local bool has_state = false;
    {
      py::gil_scoped_acquire gil;
      if (!has_state) {
        gil.inc_ref();  // keeps this thread's Python state (made once) for its next deliveries
        has_state = true;
      }
      deliver(d);
      std::vector<std::unique_ptr<gil_owned>> garbage;
      {
        std::lock_guard lk(m_mutex);
        garbage.swap(m_garbage);
      }
    }
    if (d.count) d.count->add(-1);
  }
  /// Delivers `d` on the calling thread, which holds the GIL (fast_wait's taker).
  static void deliver_now(delivery& d) {
    deliver(d);
    if (d.count) d.count->add(-1);
  }
  /// Stops the thread after it delivered what was queued (from a thread holding the GIL).
  void stop() {
    {
      std::lock_guard lk(m_mutex);
      if (m_stopped) return;
      m_stopped = true;
      m_cv.notify_one();
    }
    if (m_started && !on_thread()) {
      py::gil_scoped_release nogil;
      m_thread.join();
    }
  }

 private:
  deliverer() = default;
  void run() {
    py::gil_scoped_acquire gil;                     // this thread's Python state, kept while it runs
    std::deque<std::shared_ptr<fast_wait>> parked;  // in the order parked: due at parked_at + grace
    for (;;) {
      std::vector<delivery> batch;
      std::vector<std::unique_ptr<gil_owned>> garbage;
      bool stopping = false;
      {
        py::gil_scoped_release nogil;  // taken back only when there is something to deliver or drop
        for (;;) {
          std::unique_lock lk(m_mutex);
          auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(20);
          if (!parked.empty()) until = std::min(until, parked.front()->parked_at + fast_wait::grace);
          m_cv.wait_until(lk, until, [&] { return m_stopped || !m_deliveries.empty(); });
          for (auto& d : m_deliveries) {
            if (d.parked)
              parked.push_back(std::move(d.parked));
            else
              batch.push_back(std::move(d));
          }
          m_deliveries.clear();
          garbage.swap(m_garbage);
          stopping = m_stopped;
          lk.unlock();
          const auto now = std::chrono::steady_clock::now();
          while (!parked.empty() && (stopping || parked.front()->parked_at + fast_wait::grace <= now)) {
            auto& w = *parked.front();
            std::optional<delivery> d;
            {
              std::lock_guard wl(w.m);
              d = w.take();  // none: a thread took it
            }
            if (d) batch.push_back(std::move(*d));
            parked.pop_front();
          }
          if (!batch.empty() || !garbage.empty() || (stopping && parked.empty())) break;
        }
      }
      for (auto& d : batch) deliver(d);
      garbage.clear();
      for (auto& d : batch)
        if (d.count) d.count->add(-1);
      if (stopping) {
        std::lock_guard lk(m_mutex);
        if (m_deliveries.empty() && m_garbage.empty() && parked.empty()) return;
      }
    }
  }
  static void deliver(delivery& d) {
    static PyObject* set_result = interned("set_result");
    static PyObject* set_exception = interned("set_exception");
    static PyObject* call_soon = interned("call_soon_threadsafe");
    PyObject* target = d.target;
    d.target = nullptr;
    try {
      const bool failed = d.kind != target_kind::callback && !d.result->ok();
      py::object value;
      if (failed) {
        value = py::reinterpret_steal<py::object>(
            PyObject_CallOneArg(g_types.request_error, py::str(d.result->error()).ptr()));
        if (!value) throw py::error_already_set();
      } else {
        value = make_result_object(std::move(d.result));
      }
      PyObject* ret = nullptr;
      switch (d.kind) {
        case target_kind::future:
          ret = PyObject_CallMethodOneArg(target, failed ? set_exception : set_result, value.ptr());
          break;
        case target_kind::callback: ret = PyObject_CallOneArg(target, value.ptr()); break;
        case target_kind::async: {
          PyObject* loop = PyTuple_GET_ITEM(target, 0);
          PyObject* fut = PyTuple_GET_ITEM(target, 1);
          ret = PyObject_CallMethodObjArgs(loop, call_soon, g_types.resolve_async, fut, value.ptr(),
                                           failed ? Py_True : Py_False, nullptr);
          if (ret == nullptr && PyErr_ExceptionMatches(PyExc_RuntimeError)) PyErr_Clear();  // its loop is closed
          break;
        }
      }
      if (ret == nullptr) PyErr_WriteUnraisable(target);
      Py_XDECREF(ret);
    } catch (py::error_already_set& e) {
      e.restore();
      PyErr_WriteUnraisable(target);
    } catch (const std::exception& e) {
      PyErr_SetString(PyExc_RuntimeError, e.what());
      PyErr_WriteUnraisable(target);
    }
    Py_DECREF(target);
  }

  std::mutex m_mutex;
  std::condition_variable m_cv;
  std::vector<delivery> m_deliveries;
  std::vector<std::unique_ptr<gil_owned>> m_garbage;
  bool m_started = false;
  bool m_stopped = false;
  std::thread m_thread;
};

constexpr const char* fast_wait_capsule = "mpi_offload.fast_wait";

fast_wait& capsule_wait(py::handle capsule) {
  auto* holder = static_cast<std::shared_ptr<fast_wait>*>(PyCapsule_GetPointer(capsule.ptr(), fast_wait_capsule));
  if (holder == nullptr) throw py::error_already_set();
  return **holder;
}

/// mpi_offload.Future's wait (result(), exception()): delivers the request's result on this thread if it is parked,
/// else blocks without the GIL until the library thread hands it here, then delivers it. Returns the timeout left for
/// concurrent.futures' own wait: `timeout` when the future is done or another thread waits here already, 0 when the
/// wait here timed out. Ctrl-C interrupts it.
py::object wait_request(py::handle capsule, py::object timeout) {
  fast_wait& w = capsule_wait(capsule);
  using clock = std::chrono::steady_clock;
  const double seconds = timeout.is_none() ? -1.0 : std::max(0.0, timeout.cast<double>());
  std::optional<delivery> got;
  {
    std::lock_guard lk(w.m);
    got = w.take();
    if (!got) {
      if (w.s != fast_wait::state::idle) return timeout;  // done, or another thread waits here
      if (seconds == 0.0) return timeout;
      w.s = fast_wait::state::waiting;
    }
  }
  const auto deadline =
      seconds < 0 ? clock::time_point::max()
                  : clock::now() + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(seconds));
  while (!got) {
    bool timed_out = false;
    {
      py::gil_scoped_release nogil;
      std::unique_lock lk(w.m);
      // Slices of 50 ms: the signal check below needs the GIL.
      const auto until = std::min(deadline, clock::now() + std::chrono::milliseconds(50));
      w.cv.wait_until(lk, until, [&] { return w.s == fast_wait::state::handed; });
      got = w.take();
      timed_out = !got && clock::now() >= deadline;
      if (!got && timed_out) w.s = fast_wait::state::idle;
    }
    if (timed_out) return py::float_(0.0);
    if (!got && PyErr_CheckSignals() != 0) {
      py::error_already_set interrupted;  // takes the exception out of the indicator
      {
        std::lock_guard lk(w.m);
        got = w.take();
        if (!got) w.s = fast_wait::state::idle;
      }
      if (got) deliverer::deliver_now(*got);
      throw interrupted;
    }
  }
  deliverer::deliver_now(*got);
  return timeout;
}

/// mpi_offload.Future's done() and add_done_callback(): delivers the result on this thread if
/// it is parked; with `eager` (a done-callback waits), a result that comes later goes to the
/// deliverer at once instead of being parked.
void take_request(py::handle capsule, bool eager) {
  fast_wait& w = capsule_wait(capsule);
  std::optional<delivery> got;
  {
    std::lock_guard lk(w.m);
    got = w.take();
    if (eager) w.eager = true;
  }
  if (got) deliverer::deliver_now(*got);
}

/// A Python reference that may be dropped on any thread (through the deliverer).
struct py_ref final : gil_owned {
  PyObject* obj;
  explicit py_ref(PyObject* o) : obj(o) { Py_XINCREF(o); }
  ~py_ref() override { Py_XDECREF(obj); }
};

// ---- dtypes --------------------------------------------------------------------------------

std::string supported_dtypes() {
  return "float32, float64, float16, int8, int16, int32, int64, uint8, uint16, uint32, uint64, bool, bfloat16";
}

/// The offload dtype of a numpy dtype, or nullopt.
std::optional<offload::dtype> offload_dtype(const py::dtype& dt) {
  const auto* d = py::detail::array_descriptor_proxy(dt.ptr());
  const auto size = static_cast<std::size_t>(d->elsize);
  switch (d->kind) {
    case 'f':
      if (size == 4) return offload::dtype::f32;
      if (size == 8) return offload::dtype::f64;
      if (size == 2) return offload::dtype::f16;
      return std::nullopt;
    case 'i':
      if (size == 1) return offload::dtype::i8;
      if (size == 2) return offload::dtype::i16;
      if (size == 4) return offload::dtype::i32;
      if (size == 8) return offload::dtype::i64;
      return std::nullopt;
    case 'u':
      if (size == 1) return offload::dtype::u8;
      if (size == 2) return offload::dtype::u16;
      if (size == 4) return offload::dtype::u32;
      if (size == 8) return offload::dtype::u64;
      return std::nullopt;
    case 'b': return size == 1 ? std::optional(offload::dtype::boolean) : std::nullopt;
    default:
      if (size == 2 && g_types.bf16 != nullptr && g_types.bf16 != Py_None &&
          PyObject_RichCompareBool(dt.ptr(), g_types.bf16, Py_EQ) == 1)
        return offload::dtype::bf16;
      return std::nullopt;
  }
}

/// The numpy dtype of an offload dtype (bf16: ml_dtypes.bfloat16 when importable, else uint16).
py::dtype numpy_dtype(offload::dtype t) {
  switch (t) {
    case offload::dtype::f32: return py::dtype::of<float>();
    case offload::dtype::f64: return py::dtype::of<double>();
    case offload::dtype::i32: return py::dtype::of<std::int32_t>();
    case offload::dtype::i64: return py::dtype::of<std::int64_t>();
    case offload::dtype::u8: return py::dtype::of<std::uint8_t>();
    case offload::dtype::boolean: return py::dtype::of<bool>();
    case offload::dtype::i8: return py::dtype::of<std::int8_t>();
    case offload::dtype::i16: return py::dtype::of<std::int16_t>();
    case offload::dtype::u16: return py::dtype::of<std::uint16_t>();
    case offload::dtype::u32: return py::dtype::of<std::uint32_t>();
    case offload::dtype::u64: return py::dtype::of<std::uint64_t>();
    case offload::dtype::f16: return py::dtype("float16");
    case offload::dtype::bf16:
      if (g_types.bf16 != nullptr && g_types.bf16 != Py_None) return py::reinterpret_borrow<py::dtype>(g_types.bf16);
      return py::dtype::of<std::uint16_t>();
  }
  throw std::invalid_argument("unknown dtype");
}

/// A dtype given as "f32" (the library's names), a numpy dtype or anything np.dtype takes.
offload::dtype parse_dtype_arg(py::handle obj, const std::string& what) {
  if (py::isinstance<py::str>(obj)) {
    const auto s = obj.cast<std::string>();
    if (auto t = offload::parse_dtype(s)) return *t;
  }
  py::dtype dt;
  try {
    dt = py::dtype::from_args(py::reinterpret_borrow<py::object>(obj));
  } catch (py::error_already_set&) {
    throw py::type_error(what + ": " + std::string(py::repr(obj)) + " is not a dtype");
  }
  if (auto t = offload_dtype(dt)) return *t;
  throw py::type_error(what + ": dtype " + std::string(py::str(dt)) + " is not one mpi_offload carries (" +
                       supported_dtypes() + ")");
}

// ---- results -------------------------------------------------------------------------------

/// Owns one result; the base of every array made from it.
struct reply {
  std::shared_ptr<offload::result> r;
};

py::object make_result_object(std::shared_ptr<offload::result> r) {
  static PyObject* reply_attr = interned("_reply");
  const offload::result& res = *r;
  py::object owner = py::cast(reply{std::move(r)});
  auto out = py::reinterpret_steal<py::object>(PyObject_CallNoArgs(g_types.result));
  if (!out) throw py::error_already_set();
  if (PyObject_SetAttr(out.ptr(), reply_attr, owner.ptr()) != 0) throw py::error_already_set();
  for (const auto& p : res.products()) {
    const auto shape = p.shape();
    // The reply owns its bytes (offload::message): writable views, no copy.
    py::array a(numpy_dtype(p.type), std::vector<py::ssize_t>(shape.begin(), shape.end()), std::vector<py::ssize_t>{},
                const_cast<std::byte*>(p.data), owner);
    if (PyDict_SetItem(out.ptr(), py::str(std::string(p.name)).ptr(), a.ptr()) != 0) throw py::error_already_set();
  }
  return out;
}

// ---- stage timings -------------------------------------------------------------------------

/// Times of one stage: count, sum, and a log histogram (50 bins a decade from 100 ns) for
/// quantiles within 5 %.
struct stage_histogram {
  static constexpr int bins_per_decade = 50, decades = 10;
  static constexpr double floor_s = 1e-7;
  std::uint64_t count = 0;
  double sum = 0, max = 0;
  std::vector<std::uint64_t> bins = std::vector<std::uint64_t>(bins_per_decade * decades + 1);
  void add(double seconds) {
    seconds = std::max(seconds, 0.0);
    ++count;
    sum += seconds;
    max = std::max(max, seconds);
    const double x = seconds <= floor_s ? 0.0 : std::log10(seconds / floor_s) * bins_per_decade;
    bins[std::min<std::size_t>(static_cast<std::size_t>(x), bins.size() - 1)] += 1;
  }
  double quantile(double q) const {
    if (count == 0) return 0;
    const auto want = static_cast<std::uint64_t>(std::ceil(q * double(count)));
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < bins.size(); ++i) {
      seen += bins[i];
      if (seen >= std::max<std::uint64_t>(want, 1))
        return std::min(max, floor_s * std::pow(10.0, (double(i) + 0.5) / bins_per_decade));
    }
    return max;
  }
};

struct stage_stats {
  static constexpr const char* names[] = {"transmitter_queue", "network_out", "receiver_queue", "kernel",
                                          "network_back",      "round_trip",  "latency"};
  std::mutex m;
  std::array<stage_histogram, 7> stages;
  void add(const offload::result& r) {
    std::lock_guard lk(m);
    if (r.fallback() == offload::fallback_reason::none && r.receiver() >= 0) {
      const auto& t = r.timing();
      const double v[] = {t.transmitter_queue(), t.network_out(), t.receiver_queue(), t.kernel(),
                          t.network_back(),      t.round_trip()};
      for (std::size_t i = 0; i < 6; ++i) stages[i].add(v[i]);
    }
    stages[6].add(r.latency());
  }
  py::dict to_dict() {
    std::lock_guard lk(m);
    py::dict out;
    for (std::size_t i = 0; i < stages.size(); ++i) {
      const auto& s = stages[i];
      out[names[i]] = py::dict("count"_a = s.count, "mean_s"_a = s.count ? s.sum / double(s.count) : 0.0,
                               "p50_s"_a = s.quantile(0.5), "p90_s"_a = s.quantile(0.9), "p99_s"_a = s.quantile(0.99),
                               "max_s"_a = s.max);
    }
    return out;
  }
};

template <class Stats> py::dict counters_dict(const Stats& s) {
  py::dict out;
  for (const auto& c : Stats::counters()) out[c.name] = s.*c.member;
  return out;
}

py::dict memory_dict(const offload::host_pool_stats& m) {
  return py::dict("hits"_a = m.hits, "misses"_a = m.misses, "releases"_a = m.releases,
                  "bytes_cached"_a = m.bytes_cached, "bytes_in_use"_a = m.bytes_in_use,
                  "bytes_pinned"_a = m.bytes_pinned);
}

// ---- objects closed at exit ----------------------------------------------------------------

struct closable {
  virtual ~closable() = default;
  virtual void close() = 0;
  virtual int close_order() const = 0;  // transmitters 0, receivers 1, runtimes 2
};
std::mutex g_live_mutex;
std::vector<std::weak_ptr<closable>> g_live;

void register_live(const std::shared_ptr<closable>& c) {
  std::lock_guard lk(g_live_mutex);
  std::erase_if(g_live, [](const auto& w) { return w.expired(); });
  g_live.push_back(c);
}

// ---- runtime -------------------------------------------------------------------------------

struct py_runtime final : closable, std::enable_shared_from_this<py_runtime> {
  std::shared_ptr<offload::runtime> rt;
  bool adopted = false;
  std::shared_ptr<offload::runtime> get() const {
    if (!rt) throw std::runtime_error("the runtime is closed");
    return rt;
  }
  void close() override {
    auto mine = std::move(rt);  // transmitters and receivers still open keep it until they close
    without_gil([&] { mine.reset(); });
  }
  int close_order() const override { return 2; }
  ~py_runtime() override { close(); }
};

// ---- transports ----------------------------------------------------------------------------

/// mpi_link with the mpi4py communicator it names kept alive.
struct py_mpi_link {
  offload::mpi_link link;
  py::object comm;  // None: the runtime's
};

struct py_listen_all {
  std::vector<py::object> each;
};

offload::transport to_transport(py::handle link) {
  if (py::isinstance<py_mpi_link>(link)) return link.cast<const py_mpi_link&>().link;
  if (py::isinstance<offload::grpc_link>(link)) return link.cast<const offload::grpc_link&>();
  if (py::isinstance<offload::grpc_listen>(link)) return link.cast<const offload::grpc_listen&>();
#if OFFLOAD_PY_KSERVE
  if (py::isinstance<offload::kserve_link>(link)) return offload::transport(link.cast<const offload::kserve_link&>());
  if (py::isinstance<offload::kserve_listen>(link))
    return offload::transport(link.cast<const offload::kserve_listen&>());
#endif
  if (py::isinstance<py_listen_all>(link)) {
    offload::listen_all all;
    for (const auto& t : link.cast<const py_listen_all&>().each) all.each.push_back(to_transport(t));
    return all;
  }
  throw py::type_error(
      "link: " + std::string(py::repr(link)) +
      " is not a transport (mpi_link, grpc_link, grpc_listen, kserve_link, kserve_listen, listen_all)");
}

std::chrono::microseconds seconds_us(double s, const char* what) {
  if (!(s >= 0) || s > 1e9)
    throw py::value_error(std::string(what) + ": " + std::to_string(s) + " is not a duration in seconds");
  return std::chrono::microseconds(static_cast<std::int64_t>(std::llround(s * 1e6)));
}
std::chrono::milliseconds seconds_ms(double s, const char* what) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(seconds_us(s, what));
}

// ---- kernel registries and Python kernels --------------------------------------------------

/// A registry and the model repositories added to it (a receiver applies their scheduling).
struct py_registry {
  offload::kernel_registry reg;
#if OFFLOAD_PY_MODELS
  std::vector<offload::model_repository> repositories;
#endif
};

/// One of a Python kernel's declared tensors; -1 dims: any size (the first, when every tensor
/// has it: the rows, as a batched model's).
using tensor_list = std::vector<offload::tensor_spec>;

tensor_list parse_tensors(py::handle obj, const std::string& what) {
  tensor_list out;
  if (obj.is_none()) return out;
  for (auto item : obj) {
    auto t = py::reinterpret_borrow<py::sequence>(item);
    if (!py::isinstance<py::sequence>(item) || py::isinstance<py::str>(item) || t.size() != 3)
      throw py::type_error(what + ": each tensor is (name, dtype, dims), not " + std::string(py::repr(item)));
    offload::tensor_spec s;
    s.name = t[0].cast<std::string>();
    s.type = parse_dtype_arg(t[1], what + " '" + s.name + "'");
    for (auto d : t[2]) {
      const auto v = d.cast<std::int64_t>();
      if (v < -1) throw py::value_error(what + " '" + s.name + "': dim " + std::to_string(v) + " is below -1");
      s.dims.push_back(v);
    }
    if (s.dims.empty())
      throw py::value_error(what + " '" + s.name + "': give its dims ([-1] for a flat array of any length)");
    out.push_back(std::move(s));
  }
  return out;
}

std::string dims_text(const std::vector<std::int64_t>& dims) {
  return offload::shape_text(dims);
}

/// A kernel whose work is a Python callable taking and returning dicts of numpy arrays.
class python_kernel final : public offload::kernel {
 public:
  python_kernel(std::string name, std::string version, py::object fn, tensor_list inputs, tensor_list outputs,
                py::object specs_fn, bool joinable)
      : m_name(std::move(name)),
        m_version(std::move(version)),
        m_fn(fn.release().ptr()),
        m_specs_fn(specs_fn.is_none() ? nullptr : specs_fn.release().ptr()),
        m_inputs(std::move(inputs)),
        m_outputs(std::move(outputs)),
        m_joinable(joinable) {
    if (!PyCallable_Check(m_fn)) throw py::type_error("kernel '" + m_name + "': its function is not callable");
    m_batched = !m_inputs.empty() && !m_outputs.empty();
    for (const auto* list : {&m_inputs, &m_outputs})
      for (const auto& t : *list) m_batched = m_batched && t.dims.front() == -1;
    if (m_specs_fn == nullptr) {
      if (m_outputs.empty())
        throw py::value_error("kernel '" + m_name + "': declare its outputs (outputs=[(name, dtype, dims)]) or give " +
                              "output_specs");
      for (const auto& t : m_outputs)
        for (std::size_t i = m_batched ? 1 : 0; i < t.dims.size(); ++i)
          if (t.dims[i] < 0)
            throw py::value_error("kernel '" + m_name + "': output '" + t.name + "' has dims " + dims_text(t.dims) +
                                  ": a -1 other than the rows needs output_specs to size it");
    }
    if (m_joinable && !m_batched)
      throw py::value_error("kernel '" + m_name + "': joinable needs rows: every input and output's first dim -1");
  }
  ~python_kernel() override {
    if (g_finalizing.load() || Py_IsInitialized() == 0) return;  // leaked: Python is going away
    py::gil_scoped_acquire gil;
    Py_XDECREF(m_fn);
    Py_XDECREF(m_specs_fn);
  }

  std::string_view name() const noexcept override { return m_name; }
  std::string_view version() const noexcept override { return m_version; }
  std::uint64_t default_size() const noexcept override { return 64; }

  std::vector<offload::product_spec> output_specs(const offload::product_views& in) const override {
    const auto shapes = input_shapes(in);
    if (m_specs_fn != nullptr) return specs_from_python(in, shapes);
    std::vector<offload::product_spec> out;
    for (const auto& t : m_outputs) {
      offload::product_spec s{t.name, t.type, 1, t.dims};
      if (m_batched) s.dims[0] = rows(in, shapes);
      for (auto d : s.dims) s.count *= static_cast<std::uint64_t>(d);
      if (s.dims.size() == 1) s.dims.clear();  // flat
      out.push_back(std::move(s));
    }
    return out;
  }

  void run_cpu(const offload::product_views& in, offload::message_writer& out) const override {
    if (g_finalizing.load()) throw std::runtime_error("kernel '" + m_name + "': Python is shutting down");
    const auto shapes = input_shapes(in);
    py::gil_scoped_acquire gil;
    std::string failure;
    try {
      call(in, shapes, out);
      return;
    } catch (py::error_already_set& e) {
      failure = e.what();
    }
    throw std::runtime_error("Python kernel '" + m_name + "' raised " + failure);
  }
  void run_cpu_batch(std::span<const offload::product_views* const> ins,
                     std::span<offload::message_writer* const> outs) const override {
    for (std::size_t i = 0; i < ins.size(); ++i) run_cpu(*ins[i], *outs[i]);
  }
  offload::batch_rule batching() const override { return {m_joinable, {}}; }
  std::uint64_t items(const offload::product_views& in) const override {
    return m_batched ? static_cast<std::uint64_t>(rows(in, input_shapes(in))) : 1;
  }
  offload::model_io io() const override {
    if (m_inputs.empty() || m_outputs.empty()) return {};
    return {m_inputs, m_outputs, m_batched, 0};
  }

  std::vector<offload::product> make_inputs(const offload::input_params& p) const override {
    std::uint64_t state = p.seed;
    auto next = [&state] {  // splitmix64
      std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
      return z ^ (z >> 31);
    };
    std::vector<offload::product> out;
    for (const auto& t : m_inputs) {
      offload::dims_t dims = t.dims;
      std::uint64_t count = 1;
      for (auto& d : dims) {
        if (d < 0) d = static_cast<std::int64_t>(std::max<std::uint64_t>(p.size, 1));
        count *= static_cast<std::uint64_t>(d);
      }
      auto prod = offload::product::zeros(t.name, t.type, count);
      auto fill = [&](auto tag) {
        using T = decltype(tag);
        for (auto& v : prod.as<T>()) {
          if constexpr (std::is_floating_point_v<T>)
            v = static_cast<T>(double(next() >> 11) * 0x1p-53 * 2.0 - 1.0);
          else if constexpr (std::is_same_v<T, bool>)
            v = (next() & 1u) != 0;
          else
            v = static_cast<T>(next() % 100);
        }
      };
      switch (t.type) {
        case offload::dtype::f32: fill(float{}); break;
        case offload::dtype::f64: fill(double{}); break;
        case offload::dtype::i32: fill(std::int32_t{}); break;
        case offload::dtype::i64: fill(std::int64_t{}); break;
        case offload::dtype::u8: fill(std::uint8_t{}); break;
        case offload::dtype::boolean: fill(bool{}); break;
        case offload::dtype::i8: fill(std::int8_t{}); break;
        case offload::dtype::i16: fill(std::int16_t{}); break;
        case offload::dtype::u16: fill(std::uint16_t{}); break;
        case offload::dtype::u32: fill(std::uint32_t{}); break;
        case offload::dtype::u64: fill(std::uint64_t{}); break;
        case offload::dtype::f16:
          for (auto& v : prod.as<offload::float16>())
            v = offload::float16::from_float(float(double(next() >> 11) * 0x1p-53 * 2.0 - 1.0));
          break;
        case offload::dtype::bf16:
          for (auto& v : prod.as<offload::bfloat16>())
            v = offload::bfloat16::from_float(float(double(next() >> 11) * 0x1p-53 * 2.0 - 1.0));
          break;
      }
      if (dims.size() > 1) prod.reshape(dims);
      out.push_back(std::move(prod));
    }
    return out;
  }

 private:
  /// Each declared input's shape in `in` (by position in m_inputs), checked; products not
  /// declared keep their own shape. Throws input_error naming the input.
  std::vector<offload::dims_t> input_shapes(const offload::product_views& in) const {
    std::vector<offload::dims_t> shapes;
    for (const auto& t : m_inputs) {
      const auto& p = in.at(t.name);
      if (p.type != t.type)
        throw offload::input_error("input '" + t.name + "' is " + std::string(offload::dtype_name(p.type)) + ", not " +
                                   std::string(offload::dtype_name(t.type)));
      offload::dims_t shape = p.shape();
      if (p.dims.empty() && t.dims.size() > 1) {  // flat: shaped as declared, one -1 sized from the count
        std::uint64_t fixed = 1;
        int unknown = 0;
        for (auto d : t.dims) d < 0 ? void(++unknown) : void(fixed *= static_cast<std::uint64_t>(d));
        if (unknown > 1 || (fixed == 0 ? p.count != 0 : p.count % fixed != 0) || (unknown == 0 && p.count != fixed))
          throw offload::input_error("input '" + t.name + "' has " + std::to_string(p.count) +
                                     " elements, which cannot have dims " + dims_text(t.dims));
        shape = t.dims;
        for (auto& d : shape)
          if (d < 0) d = static_cast<std::int64_t>(fixed == 0 ? 0 : p.count / fixed);
      } else {
        bool fits = shape.size() == t.dims.size();
        for (std::size_t i = 0; fits && i < shape.size(); ++i) fits = t.dims[i] < 0 || t.dims[i] == shape[i];
        if (!fits)
          throw offload::input_error("input '" + t.name + "' has dims " + dims_text(shape) + ", not " +
                                     dims_text(t.dims));
      }
      shapes.push_back(std::move(shape));
    }
    return shapes;
  }
  std::int64_t rows(const offload::product_views& in, const std::vector<offload::dims_t>& shapes) const {
    (void)in;
    std::int64_t n = -1;
    for (std::size_t i = 0; i < shapes.size(); ++i) {
      if (n >= 0 && shapes[i][0] != n)
        throw offload::input_error("input '" + m_inputs[i].name + "' has " + std::to_string(shapes[i][0]) +
                                   " rows, input '" + m_inputs[0].name + "' " + std::to_string(n));
      n = shapes[i][0];
    }
    return std::max<std::int64_t>(n, 0);
  }
  py::object input_arrays(const offload::product_views& in, const std::vector<offload::dims_t>& shapes,
                          std::vector<py::array>& keep) const {
    py::dict args;
    // A non-array base, so that numpy makes views, not copies (leaked: it lives as long as Python).
    static PyObject* base = py::capsule(static_cast<void*>(&g_types)).release().ptr();
    for (const auto& p : in) {
      offload::dims_t shape = p.shape();
      for (std::size_t i = 0; i < m_inputs.size(); ++i)
        if (m_inputs[i].name == p.name) shape = shapes[i];
      py::array a(numpy_dtype(p.type), std::vector<py::ssize_t>(shape.begin(), shape.end()), std::vector<py::ssize_t>{},
                  p.data, py::handle(base));
      py::detail::array_proxy(a.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
      args[py::str(std::string(p.name))] = a;
      keep.push_back(std::move(a));
    }
    return args;
  }
  void call(const offload::product_views& in, const std::vector<offload::dims_t>& shapes,
            offload::message_writer& out) const {
    std::vector<py::array> views;
    py::object args = input_arrays(in, shapes, views);
    auto ret = py::reinterpret_steal<py::object>(PyObject_CallOneArg(m_fn, args.ptr()));
    if (!ret) throw py::error_already_set();
    args = py::object();
    for (const auto& v : views)
      if (Py_REFCNT(v.ptr()) > 1 && !m_warned_escape.exchange(true))
        offload::logger()->warn(
            "Python kernel '{}' kept an input array after its call: its memory goes back to the "
            "library when the call returns; keep a copy (np.array(x)) instead",
            m_name);
    if (!PyMapping_Check(ret.ptr()) || py::isinstance<py::str>(ret))
      throw offload::output_error("Python kernel '" + m_name + "' returned " +
                                  std::string(py::str(py::type::of(ret).attr("__name__"))) +
                                  ", not a dict of numpy arrays");
    for (std::size_t i = 0; i < out.product_count(); ++i) {
      const auto& spec = out.spec(i);
      auto key = py::str(spec.name);
      if (PyMapping_HasKey(ret.ptr(), key.ptr()) == 0)
        throw offload::output_error("Python kernel '" + m_name + "' returned no output '" + spec.name + "'");
      auto arr = py::array::ensure(ret[key]);
      if (!arr) throw offload::output_error("output '" + spec.name + "' is not an array");
      const auto t = offload_dtype(arr.dtype());
      if (!t || *t != spec.type)
        throw offload::output_error("output '" + spec.name + "' is " + std::string(py::str(arr.dtype())) +
                                    ", its spec says " + std::string(offload::dtype_name(spec.type)));
      if (static_cast<std::uint64_t>(arr.size()) != spec.count)
        throw offload::output_error("output '" + spec.name + "' has " + std::to_string(arr.size()) +
                                    " elements, its spec says " + std::to_string(spec.count));
      if (spec.count == 0) continue;
      auto c = py::array::ensure(arr, py::array::c_style);
      std::memcpy(out.payload(i).data(), c.data(), spec.size_bytes());
    }
  }
  std::vector<offload::product_spec> specs_from_python(const offload::product_views& in,
                                                       const std::vector<offload::dims_t>& shapes) const {
    if (g_finalizing.load()) throw std::runtime_error("kernel '" + m_name + "': Python is shutting down");
    py::gil_scoped_acquire gil;
    std::string failure;
    try {
      py::dict specs;
      for (const auto& p : in) {
        offload::dims_t shape = p.shape();
        for (std::size_t i = 0; i < m_inputs.size(); ++i)
          if (m_inputs[i].name == p.name) shape = shapes[i];
        specs[py::str(std::string(p.name))] =
            py::make_tuple(std::string(offload::dtype_name(p.type)), py::tuple(py::cast(shape)));
      }
      auto ret = py::reinterpret_borrow<py::object>(m_specs_fn)(specs);
      std::vector<offload::product_spec> out;
      for (auto item : ret.cast<py::dict>()) {
        offload::product_spec s;
        s.name = item.first.cast<std::string>();
        auto t = item.second.cast<py::sequence>();
        if (t.size() != 2) throw py::value_error("output_specs: '" + s.name + "' is not (dtype, shape)");
        s.type = parse_dtype_arg(t[0], "output '" + s.name + "'");
        s.count = 1;
        for (auto d : t[1]) {
          const auto v = d.cast<std::int64_t>();
          if (v < 0) throw py::value_error("output_specs: '" + s.name + "' has a negative dim");
          s.dims.push_back(v);
          s.count *= static_cast<std::uint64_t>(v);
        }
        if (s.dims.size() <= 1) s.dims.clear();
        out.push_back(std::move(s));
      }
      return out;
    } catch (py::error_already_set& e) {
      failure = e.what();
    } catch (py::cast_error& e) {
      failure = e.what();
    }
    throw offload::input_error("kernel '" + m_name + "': output_specs raised " + failure);
  }

  std::string m_name, m_version;
  PyObject* m_fn;
  PyObject* m_specs_fn;
  tensor_list m_inputs, m_outputs;
  bool m_joinable = false;
  bool m_batched = false;
  mutable std::atomic<bool> m_warned_escape{false};
};

std::shared_ptr<python_kernel> kernel_from_object(py::handle obj) {
  if (py::isinstance<python_kernel>(obj)) return obj.cast<std::shared_ptr<python_kernel>>();
  // A class instance (or function) with name, version, inputs, outputs and __call__ / run.
  auto attr = [&](const char* n) { return py::hasattr(obj, n) ? py::getattr(obj, n) : py::object(py::none()); };
  auto name = attr("name"), version = attr("version");
  if (name.is_none() || version.is_none())
    throw py::type_error(
        std::string(py::repr(obj)) +
        " is not a kernel: give it name and version (and inputs, outputs), or use mpi_offload.python_kernel");
  py::object fn = py::hasattr(obj, "run") ? py::getattr(obj, "run") : py::reinterpret_borrow<py::object>(obj);
  auto specs = attr("output_specs");
  const bool joinable = py::hasattr(obj, "joinable") && py::getattr(obj, "joinable").cast<bool>();
  return std::make_shared<python_kernel>(name.cast<std::string>(), version.cast<std::string>(), fn,
                                         parse_tensors(attr("inputs"), "inputs"),
                                         parse_tensors(attr("outputs"), "outputs"), specs, joinable);
}

// ---- transmitter ---------------------------------------------------------------------------

/// The arrays of one submit: the views point into them; their references go when the library
/// lets go of the owner (through the deliverer, which has the GIL).
struct py_inputs final : gil_owned {
  std::vector<PyObject*> arrays;
  std::vector<std::string> names;
  std::vector<offload::dims_t> dims;
  ~py_inputs() override {
    for (auto* a : arrays) Py_DECREF(a);
  }
};

/// The views and owner of a dict of arrays (raises TypeError / ValueError naming the input).
offload::shared_products share_inputs(py::handle inputs) {
  if (!PyDict_Check(inputs.ptr()))
    throw py::type_error("inputs: a dict {name: numpy array}, not " +
                         std::string(py::str(py::type::of(inputs).attr("__name__"))));
  auto owned = std::make_unique<py_inputs>();
  const auto n = static_cast<std::size_t>(PyDict_Size(inputs.ptr()));
  owned->arrays.reserve(n);
  owned->names.reserve(n);
  owned->dims.reserve(n);
  std::vector<offload::product_view> views;
  views.reserve(n);
  PyObject *key = nullptr, *value = nullptr;
  Py_ssize_t pos = 0;
  while (PyDict_Next(inputs.ptr(), &pos, &key, &value)) {
    if (!PyUnicode_Check(key))
      throw py::type_error("inputs: names are str, not " + std::string(py::repr(py::handle(key))));
    Py_ssize_t len = 0;
    const char* utf8 = PyUnicode_AsUTF8AndSize(key, &len);
    if (utf8 == nullptr) throw py::error_already_set();
    std::string name(utf8, static_cast<std::size_t>(len));
    if (!py::isinstance<py::array>(value))
      throw py::type_error("input '" + name + "' is " + std::string(py::str(py::type::of(value).attr("__name__"))) +
                           ", not a numpy array");
    auto* proxy = py::detail::array_proxy(value);
    auto dt = py::reinterpret_borrow<py::dtype>(reinterpret_cast<PyObject*>(proxy->descr));
    const auto type = offload_dtype(dt);
    if (!type)
      throw py::type_error("input '" + name + "' has dtype " + std::string(py::str(dt)) +
                           ", which mpi_offload cannot send (" + supported_dtypes() + ")");
    const auto* descr = py::detail::array_descriptor_proxy(proxy->descr);
    if (descr->byteorder == '>')
      throw py::value_error("input '" + name + "' is big-endian: convert it (x.astype(x.dtype.newbyteorder('=')))");
    const int flags = proxy->flags;
    if ((flags & py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_) == 0)
      throw py::value_error("input '" + name +
                            "' is not C-contiguous: inputs are sent from their own memory, which must be one block "
                            "(np.ascontiguousarray(x) makes a contiguous copy)");
    if ((flags & py::detail::npy_api::NPY_ARRAY_ALIGNED_) == 0)
      throw py::value_error("input '" + name + "' is not aligned to its element size");
    if (static_cast<std::size_t>(proxy->nd) > offload::max_rank)
      throw py::value_error("input '" + name + "' has " + std::to_string(proxy->nd) + " dims, at most " +
                            std::to_string(offload::max_rank) + " travel");
    std::uint64_t count = 1;
    offload::dims_t dims;
    for (int i = 0; i < proxy->nd; ++i) {
      count *= static_cast<std::uint64_t>(proxy->dimensions[i]);
      dims.push_back(static_cast<std::int64_t>(proxy->dimensions[i]));
    }
    if (dims.size() < 2) dims.clear();  // 0-d and 1-d arrays travel flat
    owned->names.push_back(std::move(name));
    owned->dims.push_back(std::move(dims));
    Py_INCREF(value);
    owned->arrays.push_back(value);
    views.push_back(
        {owned->names.back(), *type, count, reinterpret_cast<const std::byte*>(proxy->data), owned->dims.back()});
  }
  std::shared_ptr<const void> owner(owned.release(),
                                    [](py_inputs* p) { deliverer::get().dispose(std::unique_ptr<gil_owned>(p)); });
  return {offload::product_views(std::move(views)), std::move(owner)};
}

/// A request's target until it is handed to the deliverer; dropped unsent (submit threw), its
/// reference goes through the deliverer too.
struct pending_target {
  PyObject* target = nullptr;
  target_kind kind = target_kind::future;
  std::shared_ptr<delivery_count> count;
  std::shared_ptr<stage_stats> stages;
  std::shared_ptr<fast_wait> wait;  // futures only
  bool here = false;                // deliver on the library thread that has the result (Transmitter(deliver="inline"))
  pending_target() = default;
  pending_target(const pending_target&) = delete;
  pending_target& operator=(const pending_target&) = delete;
  ~pending_target() {
    if (target == nullptr) return;
    auto ref = std::make_unique<py_ref>(nullptr);
    ref->obj = target;  // takes over our reference
    deliverer::get().dispose(std::move(ref));
    count->add(-1);
  }
};

struct py_transmitter final : closable {
  std::shared_ptr<offload::runtime> rt;
  std::shared_mutex m;
  std::unique_ptr<offload::transmitter> tx;
  std::shared_ptr<delivery_count> count = std::make_shared<delivery_count>();
  std::shared_ptr<stage_stats> stages = std::make_shared<stage_stats>();
  offload::transmitter_stats last_stats{};
  offload::host_pool_stats last_memory{};
  bool deliver_inline = false;

  py::object submit(const std::string& kernel, py::handle inputs, std::uint32_t priority, py::handle timeout,
                    target_kind kind, py::object target) {
    deliverer::get().ensure_started();
    offload::submit_options options{priority};
    if (!timeout.is_none()) {
      options.timeout = seconds_us(timeout.cast<double>(), "timeout");
      if (options.timeout.count() == 0)
        throw py::value_error("timeout: must be more than 0 seconds (None: the transmitter's)");
    }
    auto shared = share_inputs(inputs);
    py::object returned = py::none();
    std::shared_ptr<fast_wait> wait;
    if (kind == target_kind::future) {
      static PyObject* running = interned("set_running_or_notify_cancel");
      static PyObject* wait_name = interned("_offload_wait");
      target = py::reinterpret_steal<py::object>(PyObject_CallNoArgs(g_types.future));
      if (!target) throw py::error_already_set();
      auto r = py::reinterpret_steal<py::object>(PyObject_CallMethodNoArgs(target.ptr(), running));
      if (!r) throw py::error_already_set();
      wait = std::make_shared<fast_wait>();
      auto capsule = py::reinterpret_steal<py::object>(
          PyCapsule_New(new std::shared_ptr<fast_wait>(wait), fast_wait_capsule, [](PyObject* c) {
            delete static_cast<std::shared_ptr<fast_wait>*>(PyCapsule_GetPointer(c, fast_wait_capsule));
          }));
      if (!capsule || PyObject_SetAttr(target.ptr(), wait_name, capsule.ptr()) != 0) throw py::error_already_set();
      returned = target;
    } else if (kind == target_kind::async) {
      static PyObject* create_future = interned("create_future");
      auto loop = py::reinterpret_steal<py::object>(PyObject_CallNoArgs(g_types.running_loop));
      if (!loop) throw py::error_already_set();
      auto fut = py::reinterpret_steal<py::object>(PyObject_CallMethodNoArgs(loop.ptr(), create_future));
      if (!fut) throw py::error_already_set();
      returned = fut;
      target = py::make_tuple(loop, fut);
    }
    auto pending = std::make_shared<pending_target>();
    pending->target = target.release().ptr();
    pending->kind = kind;
    pending->count = count;
    pending->stages = stages;
    pending->wait = std::move(wait);
    pending->here = deliver_inline;
    count->add(1);
    {
      py::gil_scoped_release nogil;
      std::shared_lock lk(m);
      if (!tx) throw std::runtime_error("the transmitter is closed");
      tx->submit(
          kernel, std::move(shared),
          [pending = std::move(pending)](offload::result&& r) mutable {
            pending->stages->add(r);
            delivery d{pending->target, pending->kind, std::make_shared<offload::result>(std::move(r)), pending->count,
                       nullptr};
            pending->target = nullptr;
            if (pending->wait) {  // a future: to its waiting thread, else parked
              const auto to = pending->wait->hand(d);
              if (to == fast_wait::handoff::handed) return;
              if (to == fast_wait::handoff::parked) {
                delivery token;
                token.parked = pending->wait;
                deliverer::get().push(std::move(token));
                return;
              }
            }
            if (pending->here && !g_finalizing.load())
              deliverer::get().deliver_here(std::move(d));
            else
              deliverer::get().push(std::move(d));
          },
          options);
    }
    return returned;
  }

  void close() override {
    py::gil_scoped_release nogil;
    std::unique_ptr<offload::transmitter> t;
    {
      std::unique_lock lk(m);
      t = std::move(tx);
    }
    if (t) {
      t->close();
      last_stats = t->stats();
      last_memory = t->memory();
      t.reset();
    }
    if (!deliverer::get().on_thread() && !g_finalizing.load()) count->wait_zero();
    rt.reset();
  }
  int close_order() const override { return 0; }
  ~py_transmitter() override {
    if (tx || rt)
      without_gil([&] {
        std::unique_ptr<offload::transmitter> t;
        {
          std::unique_lock lk(m);
          t = std::move(tx);
        }
        t.reset();
        rt.reset();
      });
  }

  py::dict stats() {
    offload::transmitter_stats s;
    offload::host_pool_stats mem;
    without_gil([&] {
      std::shared_lock lk(m);
      s = tx ? tx->stats() : last_stats;
      mem = tx ? tx->memory() : last_memory;
    });
    auto out = counters_dict(s);
    out["stages"] = stages->to_dict();
    out["memory"] = memory_dict(mem);
    return out;
  }
};

// ---- receiver ------------------------------------------------------------------------------

struct py_receiver final : closable {
  std::shared_ptr<offload::runtime> rt;
  std::unique_ptr<offload::receiver> rx;
  offload::receiver_stats final_stats{};
  bool done = false;

  offload::receiver& get() {
    if (!rx) throw std::runtime_error("the receiver is closed");
    return *rx;
  }
  void close() override {
    without_gil([&] {
      if (rx) final_stats = rx->stats();
      rx.reset();
      rt.reset();
    });
  }
  int close_order() const override { return 1; }
  ~py_receiver() override {
    if (rx || rt) close();
  }
};

py::dict receiver_stats_dict(const offload::receiver_stats& s) {
  auto out = counters_dict(s);
  out["backend"] = s.backend;
  out["batch_items"] = s.batch_items;
  out["busy_s"] = s.busy_s;
  out["inline_runs"] = s.inline_runs;
  out["in_place_replies"] = s.in_place_replies;
  out["unauthenticated"] = s.unauthenticated;
  out["batch_sizes"] = s.batch_sizes;
  py::dict kernels;
  for (const auto& [name, k] : s.kernels)
    kernels[py::str(name)] = py::dict(
        "version"_a = k.version, "success"_a = k.success, "failure"_a = k.failure, "inferences"_a = k.inferences,
        "executions"_a = k.executions, "request_ns"_a = k.request_ns, "queue_ns"_a = k.queue_ns,
        "input_ns"_a = k.input_ns, "infer_ns"_a = k.infer_ns, "output_ns"_a = k.output_ns);
  out["kernels"] = kernels;
  return out;
}

MPI_Comm comm_from_handle(py::handle h) {
  return reinterpret_cast<MPI_Comm>(static_cast<std::uintptr_t>(h.cast<std::uint64_t>()));
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "mpi_offload's C++ core (pybind11); use the package mpi_offload";

  // ---- exceptions: the C++ API's, with their messages ----
  static py::exception<offload::handshake_error> handshake(m, "HandshakeError", PyExc_RuntimeError);
  static py::exception<offload::mpi_error> mpi_err(m, "MPIError", PyExc_RuntimeError);
  static py::exception<offload::plugin_error> plugin_err(m, "PluginError", PyExc_RuntimeError);
  static py::exception<offload::output_error> output_err(m, "OutputError", PyExc_ValueError);
  static py::exception<offload::input_error> input_err(m, "InputError", PyExc_ValueError);
#if OFFLOAD_PY_MODELS
  static py::exception<offload::model_repository_error> repo_err(m, "ModelRepositoryError", PyExc_RuntimeError);
#endif
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const offload::input_error& e) {
      PyErr_SetString(input_err.ptr(), e.what());
    } catch (const offload::output_error& e) {
      PyErr_SetString(output_err.ptr(), e.what());
    } catch (const offload::handshake_error& e) {
      PyErr_SetString(handshake.ptr(), e.what());
    } catch (const offload::mpi_error& e) {
      PyErr_SetString(mpi_err.ptr(), e.what());
    } catch (const offload::plugin_error& e) {
      PyErr_SetString(plugin_err.ptr(), e.what());
#if OFFLOAD_PY_MODELS
    } catch (const offload::model_repository_error& e) {
      PyErr_SetString(repo_err.ptr(), e.what());
#endif
    }
  });

  m.def(
      "_set_types",
      [](py::object result, py::object resolve_async, py::object future, py::object running_loop, py::object bf16,
         py::object request_error) {
        g_types.result = result.release().ptr();
        g_types.resolve_async = resolve_async.release().ptr();
        g_types.future = future.release().ptr();
        g_types.running_loop = running_loop.release().ptr();
        g_types.bf16 = bf16.release().ptr();
        g_types.request_error = request_error.release().ptr();
      },
      "(internal) the Python types the core builds on");
  m.def("_wait_request", &wait_request, py::arg("wait"), py::arg("timeout"),
        "(internal) mpi_offload.Future's wait in the library: the timeout left for concurrent.futures' own");
  m.def("_take_request", &take_request, py::arg("wait"), py::arg("eager"),
        "(internal) mpi_offload.Future's done(), add_done_callback(): a parked result delivered here");
  m.def(
      "_shutdown",
      [] {
        std::vector<std::shared_ptr<closable>> live;
        {
          std::lock_guard lk(g_live_mutex);
          for (auto& w : g_live)
            if (auto c = w.lock()) live.push_back(std::move(c));
          g_live.clear();
        }
        std::stable_sort(live.begin(), live.end(),
                         [](const auto& a, const auto& b) { return a->close_order() < b->close_order(); });
        for (auto& c : live) c->close();
        deliverer::get().stop();
        g_finalizing = true;
      },
      "(internal, atexit) closes every transmitter, receiver and runtime still open");
  m.def(
      "set_log_level",
      [](const std::string& level) {
        const auto l = spdlog::level::from_str(level);
        if (l == spdlog::level::off && level != "off")
          throw py::value_error("log level '" + level + "': trace, debug, info, warn, error, critical or off");
        offload::logger()->set_level(l);
      },
      "level"_a, "The library's log level: trace, debug, info (the default), warn, error, critical, off");

  // ---- runtime ----
  py::class_<py_runtime, std::shared_ptr<py_runtime>>(m, "Runtime", R"(The progress thread of this process, and MPI.

Runtime() initialises MPI on its progress thread and finalises it when closed (mpi=False: no MPI
at all, for gRPC and KServe only, rank 0 of 1). Runtime.adopt(comm) attaches to the MPI that
mpi4py initialised (MPI_THREAD_MULTIPLE) and works on a duplicate of comm. One per process.)")
      .def(py::init([](bool mpi, bool thread_multiple, double spin, double yield, double max_sleep, bool adaptive) {
             offload::progress_options o;
             o.mpi = mpi;
             o.thread_multiple = thread_multiple;
             o.spin = seconds_us(spin, "spin");
             o.yield = seconds_us(yield, "yield");
             o.max_sleep = seconds_us(max_sleep, "max_sleep");
             o.adaptive = adaptive;
             auto r = std::make_shared<py_runtime>();
             without_gil([&] { r->rt = std::make_shared<offload::runtime>(o); });
             register_live(r);
             return r;
           }),
           "mpi"_a = true, "thread_multiple"_a = false, "spin"_a = 50e-6, "yield_"_a = 2e-3, "max_sleep"_a = 200e-6,
           "adaptive"_a = true)
      .def_static(
          "_adopt",
          [](py::object handle) {
            offload::adopt_mpi app{comm_from_handle(handle)};
            auto r = std::make_shared<py_runtime>();
            r->adopted = true;
            without_gil([&] { r->rt = std::make_shared<offload::runtime>(app); });
            register_live(r);
            return r;
          },
          "handle"_a)
      .def_property_readonly("rank", [](const py_runtime& r) { return r.get()->rank(); })
      .def_property_readonly("size", [](const py_runtime& r) { return r.get()->size(); })
      .def_property_readonly("local_rank", [](const py_runtime& r) { return r.get()->local_rank(); })
      .def_property_readonly("local_size", [](const py_runtime& r) { return r.get()->local_size(); })
      .def_property_readonly("host", [](const py_runtime& r) { return r.get()->host(); })
      .def_property_readonly("adopted", [](const py_runtime& r) { return r.adopted; })
      .def(
          "barrier", [](py_runtime& r) { without_gil([&] { r.get()->barrier(); }); },
          "A barrier over the runtime's communicator that keeps the progress thread serving")
      .def("close", &py_runtime::close,
           "Lets go of the runtime: MPI is finalised (when owned) once every transmitter and receiver on it is closed")
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__", [](py_runtime& r, py::args) { r.close(); });

  // ---- transports ----
  py::class_<offload::client_security>(m, "client_security", "TLS and a token of a gRPC / KServe client")
      .def(py::init([](std::string tls_ca, std::string tls_cert, std::string tls_key, std::string token) {
             return offload::client_security{std::move(tls_ca), std::move(tls_cert), std::move(tls_key),
                                             std::move(token)};
           }),
           "tls_ca"_a = "", "tls_cert"_a = "", "tls_key"_a = "", "token"_a = "")
      .def_readwrite("tls_ca", &offload::client_security::tls_ca)
      .def_readwrite("tls_cert", &offload::client_security::tls_cert)
      .def_readwrite("tls_key", &offload::client_security::tls_key)
      .def_readwrite("token", &offload::client_security::token);
  py::class_<offload::server_security>(m, "server_security", "TLS and tokens of a gRPC / KServe server")
      .def(py::init([](std::string tls_cert, std::string tls_key, std::string tls_client_ca, std::string tokens,
                       bool insecure) {
             offload::server_security s;
             s.tls_cert = std::move(tls_cert);
             s.tls_key = std::move(tls_key);
             s.tls_client_ca = std::move(tls_client_ca);
             if (!tokens.empty()) s.tokens = offload::client_tokens::load(tokens);
             s.insecure = insecure;
             return s;
           }),
           "tls_cert"_a = "", "tls_key"_a = "", "tls_client_ca"_a = "", "tokens"_a = "", "insecure"_a = false,
           "tokens: a tokens file (NAME TOKEN [limits] per line)")
      .def_readwrite("tls_cert", &offload::server_security::tls_cert)
      .def_readwrite("tls_key", &offload::server_security::tls_key)
      .def_readwrite("tls_client_ca", &offload::server_security::tls_client_ca)
      .def_readwrite("insecure", &offload::server_security::insecure)
      .def("describe", &offload::server_security::describe);

  py::class_<py_mpi_link>(m, "mpi_link", R"(The MPI transport: a transmitter's receivers as ranks of comm (an
mpi4py communicator; None: the runtime's), or, for a receiver, no ranks (it serves whoever says hello).)")
      .def(py::init([](std::vector<int> ranks, py::object comm, std::uint64_t blocking_receive_below,
                       std::uint64_t parts_from) {
             py_mpi_link l;
             l.link.ranks = std::move(ranks);
             l.link.blocking_receive_below = blocking_receive_below;
             l.link.parts_from = parts_from;
             l.comm = comm;
             if (!comm.is_none()) {
               auto mpi = py::module_::import("mpi4py.MPI");
               l.link.comm = comm_from_handle(mpi.attr("_handleof")(comm));
             }
             return l;
           }),
           "ranks"_a = std::vector<int>{}, "comm"_a = py::none(), "blocking_receive_below"_a = 256u << 10,
           "parts_from"_a = 32u << 10)
      .def_property_readonly("ranks", [](const py_mpi_link& l) { return l.link.ranks; })
      .def_readonly("comm", &py_mpi_link::comm)
      .def("__repr__", [](const py_mpi_link& l) {
        return "mpi_link(ranks=" + std::string(py::repr(py::cast(l.link.ranks))) + ")";
      });

  py::class_<offload::grpc_link>(m, "grpc_link", "A transmitter's receivers over gRPC: 'host:port' each")
      .def(py::init([](std::vector<std::string> addresses, offload::client_security security) {
             return offload::grpc_link{std::move(addresses), std::move(security)};
           }),
           "addresses"_a, "security"_a = offload::client_security{})
      .def_readwrite("addresses", &offload::grpc_link::addresses)
      .def_readwrite("security", &offload::grpc_link::security)
      .def("__repr__", [](const offload::grpc_link& l) {
        return "grpc_link(" + std::string(py::repr(py::cast(l.addresses))) + ")";
      });
  py::class_<offload::grpc_listen>(m, "grpc_listen", "A receiver serving over gRPC on 'host:port' (port 0: a free one)")
      .def(py::init([](std::string address, std::size_t threads, std::size_t memory_bytes,
                       offload::server_security security, double hello_timeout, double write_timeout,
                       std::size_t max_streams_per_address) {
             offload::grpc_listen l;
             l.address = std::move(address);
             l.threads = threads;
             l.memory_bytes = memory_bytes;
             l.security = std::move(security);
             l.hello_timeout = seconds_ms(hello_timeout, "hello_timeout");
             l.write_timeout = seconds_ms(write_timeout, "write_timeout");
             l.max_streams_per_address = max_streams_per_address;
             return l;
           }),
           "address"_a, "threads"_a = 2, "memory_bytes"_a = 0, "security"_a = offload::server_security{},
           "hello_timeout"_a = 10.0, "write_timeout"_a = 30.0, "max_streams_per_address"_a = 256)
      .def_readwrite("address", &offload::grpc_listen::address)
      .def_readwrite("threads", &offload::grpc_listen::threads)
      .def_readwrite("memory_bytes", &offload::grpc_listen::memory_bytes)
      .def_readwrite("security", &offload::grpc_listen::security)
      .def("__repr__", [](const offload::grpc_listen& l) { return "grpc_listen('" + l.address + "')"; });
#if OFFLOAD_PY_KSERVE
  py::class_<offload::kserve_link>(m, "kserve_link", "A transmitter's receivers: KServe v2 servers at 'host:port' each")
      .def(py::init([](std::vector<std::string> addresses, std::map<std::string, std::string> versions,
                       std::uint32_t credits, offload::client_security security) {
             return offload::kserve_link{std::move(addresses), std::move(versions), credits, std::move(security)};
           }),
           "addresses"_a, "versions"_a = std::map<std::string, std::string>{}, "credits"_a = 64,
           "security"_a = offload::client_security{})
      .def_readwrite("addresses", &offload::kserve_link::addresses)
      .def_readwrite("versions", &offload::kserve_link::versions)
      .def_readwrite("credits", &offload::kserve_link::credits)
      .def_readwrite("security", &offload::kserve_link::security)
      .def("__repr__", [](const offload::kserve_link& l) {
        return "kserve_link(" + std::string(py::repr(py::cast(l.addresses))) + ")";
      });
  py::class_<offload::kserve_listen>(m, "kserve_listen", "A receiver serving KServe v2 over gRPC on 'host:port'")
      .def(py::init([](std::string address, std::size_t memory_bytes, double session_idle, std::size_t max_backlog,
                       offload::server_security security) {
             offload::kserve_listen l;
             l.address = std::move(address);
             l.memory_bytes = memory_bytes;
             l.session_idle = seconds_ms(session_idle, "session_idle");
             l.max_backlog = max_backlog;
             l.security = std::move(security);
             return l;
           }),
           "address"_a, "memory_bytes"_a = 0, "session_idle"_a = 5.0, "max_backlog"_a = 256,
           "security"_a = offload::server_security{})
      .def_readwrite("address", &offload::kserve_listen::address)
      .def_readwrite("security", &offload::kserve_listen::security)
      .def("__repr__", [](const offload::kserve_listen& l) { return "kserve_listen('" + l.address + "')"; });
#endif
  py::class_<py_listen_all>(m, "listen_all", "A receiver serving on several transports at once")
      .def(py::init([](std::vector<py::object> each) {
             for (const auto& t : each) (void)to_transport(t);  // refuses what is not a transport now
             return py_listen_all{std::move(each)};
           }),
           "each"_a)
      .def_readonly("each", &py_listen_all::each);
  m.attr("has_kserve") = bool(OFFLOAD_PY_KSERVE);

  // ---- kernels ----
  py::class_<python_kernel, std::shared_ptr<python_kernel>>(m, "PythonKernel", R"(A kernel written in Python.

fn(inputs) takes a dict of read-only numpy arrays (valid during the call only) and returns a dict
of arrays, one per output. inputs/outputs: [(name, dtype, dims)], dims with -1 for any size; when
every tensor's first dim is -1 it counts rows, and the outputs get the inputs' rows. An output
dim that the rows do not give needs output_specs(specs) -> {name: (dtype, shape)}.)")
      .def(py::init([](py::object fn, std::string name, std::string version, py::object inputs, py::object outputs,
                       py::object output_specs, bool joinable) {
             return std::make_shared<python_kernel>(std::move(name), std::move(version), fn,
                                                    parse_tensors(inputs, "inputs"), parse_tensors(outputs, "outputs"),
                                                    output_specs, joinable);
           }),
           "fn"_a, "name"_a, "version"_a = "1", "inputs"_a = py::none(), "outputs"_a = py::none(),
           "output_specs"_a = py::none(), "joinable"_a = false)
      .def_property_readonly("name", [](const python_kernel& k) { return std::string(k.name()); })
      .def_property_readonly("version", [](const python_kernel& k) { return std::string(k.version()); })
      .def(
          "__call__",
          [](const python_kernel& k, py::handle inputs) {
            // Runs the kernel as the library does (checks, layout, the Python call): a local test.
            auto shared = share_inputs(inputs);
            offload::message msg = offload::run_cpu(k, shared.views, {});
            struct holder {
              offload::message msg;
            };
            auto h = std::make_shared<holder>(holder{std::move(msg)});
            py::dict out;
            py::object base = py::capsule(new std::shared_ptr<holder>(h),
                                          [](void* p) { delete static_cast<std::shared_ptr<holder>*>(p); });
            for (const auto& p : h->msg.products()) {
              const auto shape = p.shape();
              out[py::str(std::string(p.name))] =
                  py::array(numpy_dtype(p.type), std::vector<py::ssize_t>(shape.begin(), shape.end()),
                            std::vector<py::ssize_t>{}, p.data, base);
            }
            return out;
          },
          "inputs"_a, "Runs the kernel here, through the library's checks (for tests)");

  py::class_<py_registry, std::shared_ptr<py_registry>>(m, "KernelRegistry", R"(A set of kernels by name: built-ins,
plugins, a model repository's models and Python kernels. builtin_kernels() gives a copy of the built-ins.)")
      .def(py::init([] { return std::make_shared<py_registry>(); }))
      .def(
          "add",
          [](py_registry& r, py::object k) -> py_registry& {
            if (py::isinstance<py_registry>(k)) {
              r.reg.add(k.cast<const py_registry&>().reg);
            } else {
              r.reg.add(std::shared_ptr<const offload::kernel>(kernel_from_object(k)), "Python");
            }
            return r;
          },
          "kernel"_a, py::return_value_policy::reference_internal,
          "Adds a Python kernel (PythonKernel, or an object with name, version, inputs, outputs and __call__ or run), "
          "or every kernel of another registry")
      .def(
          "load_plugin",
          [](py_registry& r, const std::string& path) -> py_registry& {
            offload::load_plugin(r.reg, path);
            return r;
          },
          "path"_a, py::return_value_policy::reference_internal, "Adds the kernels of a plugin (.so)")
      .def(
          "add_model_repository",
          [](py_registry& r, const std::string& dir) -> py_registry& {
#if OFFLOAD_PY_MODELS
            auto repo = offload::model_repository::load(dir);
            without_gil([&] { repo.add_to(r.reg); });
            r.repositories.push_back(std::move(repo));
            return r;
#else
            (void)r;
            throw std::runtime_error("model repository '" + dir + "': this build has no model support (no gRPC)");
#endif
          },
          "dir"_a, py::return_value_policy::reference_internal,
          "Adds a Triton model repository's models (a receiver given this registry also takes their scheduling)")
      .def("names", [](const py_registry& r) { return r.reg.names(); })
      .def("signature", [](const py_registry& r) { return r.reg.signature(); })
      .def("version",
           [](const py_registry& r, const std::string& name) {
             const auto* k = r.reg.find(name);
             if (k == nullptr) throw py::key_error("no kernel '" + name + "'");
             return std::string(k->version());
           })
      .def("origin", [](const py_registry& r, const std::string& name) { return r.reg.origin(name); })
      .def("__len__", [](const py_registry& r) { return r.reg.size(); })
      .def("__contains__", [](const py_registry& r, const std::string& name) { return r.reg.find(name) != nullptr; })
      .def("__iter__", [](const py_registry& r) { return py::iter(py::cast(r.reg.names())); })
      .def("__repr__", [](const py_registry& r) {
        std::string s = "KernelRegistry(";
        for (const auto& n : r.reg.names()) s += (s.back() == '(' ? "" : ", ") + n;
        return s + ")";
      });
  m.def(
      "builtin_kernels",
      [] {
        auto r = std::make_shared<py_registry>();
        r->reg = offload::kernel_registry::builtin();
        return r;
      },
      "A copy of the library's built-in kernels (clustering, echo, mlp, synthetic), to add to");

  // ---- results ----
  py::class_<offload::request_timing>(m, "RequestTiming", "When a remote request passed each stage (seconds)")
      .def_readonly("submitted", &offload::request_timing::submitted)
      .def_readonly("sent", &offload::request_timing::sent)
      .def_readonly("received", &offload::request_timing::received)
      .def_readonly("kernel_start", &offload::request_timing::kernel_start)
      .def_readonly("kernel_end", &offload::request_timing::kernel_end)
      .def_readonly("replied", &offload::request_timing::replied)
      .def_property_readonly("transmitter_queue", &offload::request_timing::transmitter_queue)
      .def_property_readonly("network_out", &offload::request_timing::network_out)
      .def_property_readonly("receiver_queue", &offload::request_timing::receiver_queue)
      .def_property_readonly("kernel", &offload::request_timing::kernel)
      .def_property_readonly("network_back", &offload::request_timing::network_back)
      .def_property_readonly("round_trip", &offload::request_timing::round_trip);
  py::class_<reply>(m, "Reply", "Owns one result's bytes: the base of its arrays")
      .def_property_readonly("ok", [](const reply& r) { return r.r->ok(); })
      .def_property_readonly("error", [](const reply& r) { return r.r->error(); })
      .def_property_readonly("fallback",
                             [](const reply& r) { return std::string(offload::to_string(r.r->fallback())); })
      .def_property_readonly("remote_error", [](const reply& r) { return r.r->remote_error(); })
      .def_property_readonly("receiver", [](const reply& r) { return r.r->receiver(); })
      .def_property_readonly("latency", [](const reply& r) { return r.r->latency(); })
      .def_property_readonly("timing", [](const reply& r) { return r.r->timing(); })
      .def_property_readonly("nbytes", [](const reply& r) {
        std::uint64_t n = 0;
        for (const auto& p : r.r->products()) n += p.size_bytes();
        return n;
      });

  // ---- transmitter ----
  py::class_<py_transmitter, std::shared_ptr<py_transmitter>>(m, "Transmitter", R"(Sends requests to the receivers
`link` names; runs a kernel locally (fallback) when none answers in time or none is in session.)")
      .def(py::init([](std::shared_ptr<py_runtime> rt, std::shared_ptr<py_registry> kernels, py::object link,
                       std::uint32_t credits, double timeout, const std::string& routing, std::size_t fallback_threads,
                       double handshake_timeout, bool require_receivers, double reconnect_max, bool send_deadlines,
                       std::uint64_t max_message_bytes, const std::string& deliver) {
             offload::transmitter_config c;
             c.credits = credits;
             c.timeout = seconds_us(timeout, "timeout");
             if (routing == "round_robin")
               c.policy = offload::routing::round_robin;
             else if (routing == "least_outstanding")
               c.policy = offload::routing::least_outstanding;
             else
               throw py::value_error("routing '" + routing + "': round_robin or least_outstanding");
             c.fallback_threads = fallback_threads;
             c.handshake_timeout = seconds_ms(handshake_timeout, "handshake_timeout");
             c.require_receivers = require_receivers;
             c.reconnect_max = seconds_ms(reconnect_max, "reconnect_max");
             c.send_deadlines = send_deadlines;
             if (max_message_bytes > 0) c.limits.max_message_bytes = max_message_bytes;
             auto t = std::make_shared<py_transmitter>();
             if (deliver != "thread" && deliver != "inline")
               throw py::value_error("deliver '" + deliver + "': thread or inline");
             t->deliver_inline = deliver == "inline";
             t->rt = rt->get();
             const auto transport = to_transport(link);
             without_gil([&] { t->tx = std::make_unique<offload::transmitter>(*t->rt, kernels->reg, transport, c); });
             register_live(t);
             return t;
           }),
           "runtime"_a, "kernels"_a, "link"_a, py::kw_only(), "credits"_a = 8, "timeout"_a = 30.0,
           "routing"_a = "round_robin", "fallback_threads"_a = 1, "handshake_timeout"_a = 60.0,
           "require_receivers"_a = false, "reconnect_max"_a = 5.0, "send_deadlines"_a = true, "max_message_bytes"_a = 0,
           "deliver"_a = "thread")
      .def(
          "submit",
          [](py_transmitter& t, const std::string& kernel, py::handle inputs, std::uint32_t priority,
             py::handle timeout, py::object callback) {
            if (callback.is_none()) return t.submit(kernel, inputs, priority, timeout, target_kind::future, py::none());
            if (!PyCallable_Check(callback.ptr())) throw py::type_error("callback: not callable");
            return t.submit(kernel, inputs, priority, timeout, target_kind::callback, std::move(callback));
          },
          "kernel"_a, "inputs"_a, py::kw_only(), "priority"_a = 0, "timeout"_a = py::none(), "callback"_a = py::none(),
          R"(Sends `inputs` ({name: C-contiguous numpy array}, from their own memory: do not change them until the
result is in) to run `kernel`. priority: 1 highest, 0 the receiver's default; timeout: seconds from submit to
reply for this request, past which it falls back (None: the transmitter's). Returns an mpi_offload.Future (a concurrent.futures.Future) of a Result (a dict of numpy arrays over the
reply's bytes); with callback, calls callback(result) instead (on the library's delivery thread) and returns None.)")
      .def(
          "submit_async",
          [](py_transmitter& t, const std::string& kernel, py::handle inputs, std::uint32_t priority,
             py::handle timeout) {
            return t.submit(kernel, inputs, priority, timeout, target_kind::async, py::none());
          },
          "kernel"_a, "inputs"_a, py::kw_only(), "priority"_a = 0, "timeout"_a = py::none(),
          "The same as submit, for asyncio: an awaitable (a future of the running loop)")
      .def(
          "_cpp_round_trips",
          [](py_transmitter& t, const std::string& kernel, py::handle inputs, std::size_t n) {
            // The C++ API's own loop on this transmitter: submit (the sharing form, as submit
            // above) and std::future::get, n times, no Python in between: the baseline of
            // scripts/bench_python.sh's "Python over the C++ API".
            auto shared = share_inputs(inputs);
            std::vector<double> seconds(n);
            {
              py::gil_scoped_release nogil;
              std::shared_lock lk(t.m);
              if (!t.tx) throw std::runtime_error("the transmitter is closed");
              for (auto& s : seconds) {
                const auto start = std::chrono::steady_clock::now();
                auto r = t.tx->submit(kernel, shared).get();
                s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
                if (!r.ok()) throw std::runtime_error(r.error());
              }
            }
            return py::array_t<double>(static_cast<py::ssize_t>(n), seconds.data());
          },
          "kernel"_a, "inputs"_a, "n"_a,
          "(internal, benchmarks) n submit-and-wait round trips of the C++ API on this transmitter: seconds each")
      .def("stats", &py_transmitter::stats, "The counters, the stage timings of remote results and the memory pool's")
      .def("close", &py_transmitter::close,
           "Waits until every result is delivered, says goodbye to the receivers; idempotent")
      .def_property_readonly("closed",
                             [](py_transmitter& t) {
                               std::shared_lock lk(t.m);
                               return !t.tx;
                             })
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__", [](py_transmitter& t, py::args) { t.close(); });

  // ---- receiver ----
  py::class_<py_receiver, std::shared_ptr<py_receiver>>(m, "Receiver", R"(Serves `peers` transmitters over `link`,
running the kernels of `kernels` (Python kernels included) on its threads.)")
      .def(py::init([](std::shared_ptr<py_runtime> rt, std::shared_ptr<py_registry> kernels, py::object link,
                       std::size_t peers, std::uint32_t credits, std::size_t threads, std::size_t max_threads,
                       std::uint32_t max_batch, double max_wait, std::vector<std::uint32_t> preferred_batch,
                       std::uint32_t max_queue, const std::string& backend, int device, double idle_timeout,
                       bool count_every_peer, double max_work, double inline_budget, std::uint64_t max_message_bytes) {
             offload::receiver_config c;
             c.credits = credits;
             c.threads = threads;
             c.max_threads = max_threads;
             c.max_batch = max_batch;
             c.max_wait = seconds_us(max_wait, "max_wait");
             c.preferred_batch = std::move(preferred_batch);
             c.max_queue = max_queue;
             const auto kind = offload::backend_from_name(backend);
             if (!kind) throw py::value_error("backend '" + backend + "': auto, cpu or cuda");
             c.backend = *kind;
             c.device = device;
             c.idle_timeout = seconds_ms(idle_timeout, "idle_timeout");
             c.count_every_peer = count_every_peer;
             c.max_work = max_work;
             c.inline_budget = seconds_us(inline_budget, "inline_budget");
             if (max_message_bytes > 0) c.limits.max_message_bytes = max_message_bytes;
#if OFFLOAD_PY_MODELS
             for (const auto& repo : kernels->repositories) repo.configure(c);
#endif
             auto r = std::make_shared<py_receiver>();
             r->rt = rt->get();
             const auto transport = to_transport(link);
             without_gil([&] {
               r->rx = std::make_unique<offload::receiver>(*r->rt, kernels->reg, transport, peers, std::move(c));
             });
             register_live(r);
             return r;
           }),
           "runtime"_a, "kernels"_a, "link"_a, "peers"_a, py::kw_only(), "credits"_a = 8, "threads"_a = 1,
           "max_threads"_a = 0, "max_batch"_a = 1, "max_wait"_a = 0.0,
           "preferred_batch"_a = std::vector<std::uint32_t>{}, "max_queue"_a = 0, "backend"_a = "auto", "device"_a = -1,
           "idle_timeout"_a = 60.0, "count_every_peer"_a = true, "max_work"_a = 0.0, "inline_budget"_a = 50e-6,
           "max_message_bytes"_a = 0)
      .def_property_readonly("port", [](py_receiver& r) { return r.get().port(); })
      .def_property_readonly("ports", [](py_receiver& r) { return r.get().ports(); })
      .def(
          "wait",
          [](py_receiver& r, std::optional<double> timeout) -> py::object {
            auto& rx = r.get();
            const auto start = std::chrono::steady_clock::now();
            const auto limit = timeout ? seconds_us(*timeout, "timeout") : std::chrono::microseconds::zero();
            for (;;) {
              const bool done = without_gil([&] { return rx.wait_for(std::chrono::milliseconds(100)); });
              if (done) return receiver_stats_dict(without_gil([&] { return rx.stats(); }));
              if (PyErr_CheckSignals() != 0) throw py::error_already_set();  // Ctrl-C
              if (timeout && std::chrono::steady_clock::now() - start >= limit) return py::none();
            }
          },
          "timeout"_a = py::none(),
          "Blocks until every expected peer is served and returns the statistics; None when `timeout` passed first")
      .def("stats",
           [](py_receiver& r) {
             if (!r.rx) return receiver_stats_dict(r.final_stats);
             return receiver_stats_dict(without_gil([&] { return r.rx->stats(); }));
           })
      .def("drain", [](py_receiver& r) { without_gil([&] { r.get().drain(); }); })
      .def_property_readonly("in_flight",
                             [](py_receiver& r) { return without_gil([&] { return r.get().in_flight(); }); })
      .def("close", &py_receiver::close, "Stops serving at once (wait() first to serve every peer)")
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__", [](py_receiver& r, py::args) { r.close(); });
}
