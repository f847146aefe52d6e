#pragma once
// Core placement with hwloc: this rank's share of its node's cores, binding of the process
// and of single threads, and a summary of the topology for the run's metadata.

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

struct hwloc_topology;

namespace offload::app {

class placement {
 public:
  placement();  ///< loads this node's topology; throws std::runtime_error when hwloc cannot
  ~placement();
  placement(const placement&) = delete;
  placement& operator=(const placement&) = delete;

  int cores() const noexcept;
  /// The cores (logical indices) of rank `local_rank` of `local_size` ranks on this node: an
  /// even, disjoint share when there are at least as many cores as ranks, else one core,
  /// `local_rank` modulo the cores (ranks then share cores).
  std::vector<int> share(int local_rank, int local_size) const;
  /// Binds the whole process (threads created later inherit it) to `cores`.
  void bind_process(const std::vector<int>& cores) const;
  /// Binds the calling thread to `core`.
  void bind_thread(int core) const;
  /// The processing units the calling thread, or the process, may run on, as a list ("0-3,8").
  std::string thread_binding() const;
  std::string process_binding() const;
  /// How many processing units the process may run on.
  int process_pus() const;
  /// Packages, NUMA nodes, cores, PUs, CPU model, L3 and memory sizes of this node.
  nlohmann::json summary() const;

 private:
  hwloc_topology* m_topo = nullptr;
};

}  // namespace offload::app
