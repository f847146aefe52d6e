# Sourced by the KServe v2 test scripts: make_stubs DIR PROTO_DIR PYTHON makes the Python stubs of
# our .proto files in DIR, or exits 77 (skipped) saying what is missing.
make_stubs() {
  local dir=$1 proto=$2 python=$3
  "$python" -c "import grpc, google.protobuf, numpy" 2>/dev/null ||
    { echo "SKIP: $python lacks grpc, protobuf or numpy (Debian: python3-grpcio python3-protobuf python3-numpy)"; exit 77; }
  command -v grpc_python_plugin >/dev/null || { echo "SKIP: no grpc_python_plugin (Debian: protobuf-compiler-grpc)"; exit 77; }
  protoc -I "$proto" --python_out="$dir" --grpc_out="$dir" --plugin=protoc-gen-grpc="$(command -v grpc_python_plugin)" \
    grpc_service.proto model_config.proto || { echo "FAIL: protoc could not make the Python stubs"; exit 1; }
}
