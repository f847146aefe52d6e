# Sourced by the scripts: what mpirun needs on our machines.
# As root, Open MPI refuses to start without these two:
if [ "$(id -u)" -eq 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
# More ranks than cores (the demo runs 4 ranks; our machines have 2 cores):
export OMPI_MCA_rmaps_base_oversubscribe=1
# mpirun binds each rank to one core when there are at most 2 ranks (bind-to core), which would
# put all of a rank's worker threads on that core. offload-run places its own threads (--bind);
# the scripts leave the ranks unbound.
export OMPI_MCA_hwloc_base_binding_policy=none
