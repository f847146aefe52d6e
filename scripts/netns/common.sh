# Sourced by the netns scripts: the names of the two emulated nodes.
NS_A=offload-a NS_B=offload-b           # namespaces ("nodes")
VETH_A=offa VETH_B=offb                 # the veth pair joining them
ADDR_A=10.77.0.1 ADDR_B=10.77.0.2 SUBNET=10.77.0.0/24
MPI_PORT_MIN=50000 MPI_PORT_RANGE=100   # MPI's TCP BTL is pinned here; only these ports are delayed
GRPC_PORT=$((MPI_PORT_MIN + MPI_PORT_RANGE - 1))  # a gRPC receiver listens here: delayed too, above MPI's
STATE=/run/offload-netns                # pid files of the delay tools
