#include "placement.hpp"

#include <hwloc.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace offload::app {
namespace {

struct bitmap {
  hwloc_bitmap_t set = hwloc_bitmap_alloc();
  bitmap() {
    if (set == nullptr) throw std::bad_alloc();
  }
  ~bitmap() { hwloc_bitmap_free(set); }
  bitmap(const bitmap&) = delete;
  bitmap& operator=(const bitmap&) = delete;
  std::string list() const {
    char* s = nullptr;
    if (hwloc_bitmap_list_asprintf(&s, set) < 0 || s == nullptr) return "?";
    std::string out(s);
    std::free(s);
    return out;
  }
};

std::string binding(hwloc_topology_t topo, int flags) {
  bitmap b;
  if (hwloc_get_cpubind(topo, b.set, flags) != 0) return std::string("unknown (") + std::strerror(errno) + ")";
  return b.list();
}

int count(hwloc_topology_t topo, hwloc_obj_type_t type) {
  return std::max(0, hwloc_get_nbobjs_by_type(topo, type));
}

}  // namespace

placement::placement() {
  if (hwloc_topology_init(&m_topo) != 0 || hwloc_topology_load(m_topo) != 0)
    throw std::runtime_error(std::string("hwloc cannot load the topology: ") + std::strerror(errno));
}

placement::~placement() {
  hwloc_topology_destroy(m_topo);
}

int placement::cores() const noexcept {
  return std::max(1, count(m_topo, HWLOC_OBJ_CORE));
}

std::vector<int> placement::share(int local_rank, int local_size) const {
  const int n = cores();
  if (local_size <= 0 || local_rank < 0 || local_rank >= local_size)
    throw std::invalid_argument("local rank " + std::to_string(local_rank) + " of " + std::to_string(local_size));
  if (local_size > n) return {local_rank % n};
  std::vector<int> out;
  for (int c = local_rank * n / local_size; c < (local_rank + 1) * n / local_size; ++c) out.push_back(c);
  return out;
}

void placement::bind_process(const std::vector<int>& cores) const {
  bitmap set;
  for (int c : cores) {
    hwloc_obj_t core = hwloc_get_obj_by_type(m_topo, HWLOC_OBJ_CORE, unsigned(c));
    if (core == nullptr) throw std::invalid_argument("no core " + std::to_string(c));
    hwloc_bitmap_or(set.set, set.set, core->cpuset);
  }
  if (hwloc_set_cpubind(m_topo, set.set, HWLOC_CPUBIND_PROCESS) != 0)
    throw std::runtime_error("cannot bind the process to PUs " + set.list() + ": " + std::strerror(errno));
}

void placement::bind_thread(int c) const {
  hwloc_obj_t core = hwloc_get_obj_by_type(m_topo, HWLOC_OBJ_CORE, unsigned(c));
  if (core == nullptr) throw std::invalid_argument("no core " + std::to_string(c));
  if (hwloc_set_cpubind(m_topo, core->cpuset, HWLOC_CPUBIND_THREAD) != 0)
    throw std::runtime_error("cannot bind a thread to core " + std::to_string(c) + ": " + std::strerror(errno));
}

std::string placement::thread_binding() const {
  return binding(m_topo, HWLOC_CPUBIND_THREAD);
}
std::string placement::process_binding() const {
  return binding(m_topo, HWLOC_CPUBIND_PROCESS);
}

int placement::process_pus() const {
  bitmap b;
  if (hwloc_get_cpubind(m_topo, b.set, HWLOC_CPUBIND_PROCESS) != 0) return -1;
  return hwloc_bitmap_weight(b.set);
}

nlohmann::json placement::summary() const {
  nlohmann::json j;
  j["packages"] = count(m_topo, HWLOC_OBJ_PACKAGE);
  j["numa_nodes"] = count(m_topo, HWLOC_OBJ_NUMANODE);
  j["cores"] = count(m_topo, HWLOC_OBJ_CORE);
  j["pus"] = count(m_topo, HWLOC_OBJ_PU);
  hwloc_obj_t package = hwloc_get_obj_by_type(m_topo, HWLOC_OBJ_PACKAGE, 0);
  const char* model = package ? hwloc_obj_get_info_by_name(package, "CPUModel") : nullptr;
  j["cpu_model"] = model ? model : "unknown";
  hwloc_obj_t l3 = hwloc_get_obj_by_type(m_topo, HWLOC_OBJ_L3CACHE, 0);
  j["l3_bytes"] = l3 ? l3->attr->cache.size : 0;
  j["memory_bytes"] = hwloc_get_root_obj(m_topo)->total_memory;
  j["hwloc"] = HWLOC_VERSION;
  return j;
}

}  // namespace offload::app
