# Sourced by scripts that kill MPI ranks (tests/mpi/faults.sh, scripts/repro/ompi_service.sh).
# rank_pid JOB RANK [NAME]: the pid of the process NAME (default offload-run) of MPI rank RANK
# started under the process JOB (mpirun, or timeout around it); waits up to 10 s for it.
rank_pid() {
  local name=${3:-offload-run}
  for _ in $(seq 100); do
    for p in $(pgrep -x "${name:0:15}"); do  # (the kernel keeps 15 characters of a name)
      local a=$p
      while [ "$a" -gt 1 ] && [ "$a" != "$1" ]; do a=$(ps -o ppid= -p "$a" | tr -d ' '); [ -n "$a" ] || a=1; done
      [ "$a" = "$1" ] || continue
      tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2" && { echo "$p"; return 0; }
    done
    sleep 0.1
  done
  return 1
}
