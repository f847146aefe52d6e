#pragma once
// KServe v2 tensors to and from the mpi-offload wire format: a ModelInferRequest checked
// against a kernel's model_io (kernel::io) and laid out as a request message; a reply's
// products given back as a ModelInferResponse with the shapes the client expects. Every
// check names what was wrong, as a gRPC status (docs/transports.md, "KServe v2", lists them).

#include <offload/host_pool.hpp>
#include <offload/kernel.hpp>
#include <offload/wire.hpp>

#include <grpcpp/support/status.h>
#include <kserve_proto/grpc_service.pb.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace offload::kserve {

/// The protocol's name of a dtype ("FP32", "INT8", "BOOL", "BF16", ...).
std::string_view datatype_name(dtype t) noexcept;
/// The dtype of a protocol datatype name; nullopt for one the wire format has not (yet).
std::optional<dtype> dtype_of_datatype(std::string_view name) noexcept;
/// Triton's model configuration type of a dtype (inference::DataType).
inference::DataType config_type(dtype t) noexcept;

/// What a request needs at its answer: which outputs, with which shapes.
struct infer_call {
  std::string model;
  std::string version;
  std::string id;                    ///< the client's request id, echoed
  std::int64_t rows = -1;            ///< a batched model's batch size (first dimension), else -1
  std::vector<std::size_t> outputs;  ///< indices into the model's io().outputs, in answer order
  std::uint64_t bytes_in = 0;        ///< the request's tensor bytes
};

/// A checked request: its wire message (request id and kernel id to be set) and its call.
struct checked_request {
  buffer message;
  infer_call call;
};

/// The checks of a ModelInferRequest for `k` (whose io() is `io`; the model and version were
/// found), in this order: inputs (count, names, datatypes, shapes, contents or raw bytes), requested outputs, size.
/// On success the request's message, encoded with kernel id `kernel_id` in storage from `pool`;
/// else the gRPC status to answer. Request parameters "priority" (int64, 1 the highest) and
/// "timeout" (int64 microseconds) become the request's priority and deadline.
struct check_result {
  std::optional<checked_request> ok;
  grpc::Status error;
};
check_result check_request(const inference::ModelInferRequest& req, const kernel& k, const model_io& io,
                           std::uint32_t kernel_id, const wire_limits& limits, host_pool& pool);

/// Fills `out` from a reply's products: the requested outputs, in order, with their shapes
/// (a declared -1 resolved from the element count and, for a batched model, the rows),
/// contents in raw_output_contents. The reply not holding a declared output (a kernel defect):
/// a status INTERNAL naming it.
grpc::Status fill_response(const message_view& reply, const model_io& io, const infer_call& call,
                           inference::ModelInferResponse& out);

/// The gRPC status for a receiver's error answer (status and text).
grpc::Status status_of_error(status s, const std::string& text);

/// The bytes of an outgoing message, to read it: a gathered one (payloads where they lie)
/// flattened into `scratch`, from `pool`.
std::span<const std::byte> readable(const outgoing_message& m, host_pool& pool, buffer& scratch);

// ---- the transmitter's side (kserve_link) ----

/// Fills `out` (model, version, id and inputs as raw contents; the outputs asked for) from a
/// request's products. Each input's shape comes from `io` (the kernel's declared tensors: a -1
/// resolved from its element count, the rows of a batched kernel from its first input), else it
/// is one-dimensional. The kernel's declared outputs are asked for, in order (none declared: all).
void fill_request(const product_views& inputs, const model_io& io, const std::string& model, const std::string& version,
                  std::uint64_t request_id, inference::ModelInferRequest& out);

/// The products of a response, in its order: name, dtype and bytes (raw_output_contents, else the
/// typed contents). An empty text on success; else what is wrong with the response.
struct response_products {
  std::vector<product_spec> specs;
  std::vector<std::string> typed;  ///< an output's bytes when they came as typed contents
  std::vector<std::string_view> bytes;
  std::string problem;
};
response_products read_response(const inference::ModelInferResponse& r);

/// The mpi-offload status of a KServe v2 server's gRPC error (the transmitter's error replies):
/// NOT_FOUND unknown_kernel, INVALID_ARGUMENT bad_input, RESOURCE_EXHAUSTED too_large,
/// DEADLINE_EXCEEDED expired, UNAVAILABLE busy, others kernel_failed.
status status_of_grpc(grpc::StatusCode code);

}  // namespace offload::kserve
