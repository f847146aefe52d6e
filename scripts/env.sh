# Sourced by the scripts: what mpirun needs on our machines.
# As root, Open MPI refuses to start without these two:
if [ "$(id -u)" -eq 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
# More ranks than cores (the demo runs 4 ranks; our machines have 2 cores):
export OMPI_MCA_rmaps_base_oversubscribe=1
