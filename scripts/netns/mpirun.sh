#!/usr/bin/env bash
# mpirun across the two netns "nodes" of setup.sh: ranks alternate between offload-a and
# offload-b (--map-by node: rank 0 on a, rank 1 on b, ...), all MPI traffic over TCP on the veth
# pair through MPI's pinned ports (so it is delayed), the launcher's own traffic not.
#   scripts/netns/mpirun.sh -np N program args...
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/common.sh"
source "$here/../env.sh"
hostfile=$(mktemp)
trap 'rm -f "$hostfile"' EXIT
printf '%s slots=8\n%s slots=8\n' "$ADDR_A" "$ADDR_B" >"$hostfile"
ip netns exec "$NS_A" mpirun --hostfile "$hostfile" --mca plm_rsh_agent "$here/nsrsh" \
  --mca oob_tcp_if_include "$SUBNET" --mca btl self,tcp --mca btl_tcp_if_include "$SUBNET" \
  --mca btl_tcp_port_min_v4 "$MPI_PORT_MIN" --mca btl_tcp_port_range_v4 "$MPI_PORT_RANGE" \
  --map-by node --bind-to none -x OMPI_ALLOW_RUN_AS_ROOT -x OMPI_ALLOW_RUN_AS_ROOT_CONFIRM "$@"
