#!/usr/bin/env bash
# mpirun across the two netns "nodes" of setup.sh: ranks alternate between offload-a and
# offload-b (--map-by node: rank 0 on a, rank 1 on b, ...), all MPI traffic over TCP on the veth
# pair through MPI's pinned ports (so it is delayed), the launcher's own traffic not.
# OFFLOAD_NETNS_LAYOUT=first-on-a puts rank 0 alone on offload-a and every other rank on
# offload-b instead (one receiver, its transmitters all across the link).
#   scripts/netns/mpirun.sh -np N program args...
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/common.sh"
source "$here/../env.sh"
hostfile=$(mktemp)
trap 'rm -f "$hostfile"' EXIT
case "${OFFLOAD_NETNS_LAYOUT:-alternate}" in
  alternate) printf '%s slots=8\n%s slots=8\n' "$ADDR_A" "$ADDR_B" >"$hostfile"; map_by=node ;;
  first-on-a) printf '%s slots=1\n%s slots=64\n' "$ADDR_A" "$ADDR_B" >"$hostfile"; map_by=slot ;;
  *) echo "mpirun.sh: OFFLOAD_NETNS_LAYOUT must be alternate or first-on-a" >&2; exit 2 ;;
esac
ip netns exec "$NS_A" mpirun --hostfile "$hostfile" --mca plm_rsh_agent "$here/nsrsh" \
  --mca oob_tcp_if_include "$SUBNET" --mca btl self,tcp --mca btl_tcp_if_include "$SUBNET" \
  --mca btl_tcp_port_min_v4 "$MPI_PORT_MIN" --mca btl_tcp_port_range_v4 "$MPI_PORT_RANGE" \
  --map-by "$map_by" --bind-to none -x OMPI_ALLOW_RUN_AS_ROOT -x OMPI_ALLOW_RUN_AS_ROOT_CONFIRM "$@"
