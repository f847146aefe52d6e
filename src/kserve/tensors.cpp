#include "tensors.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <utility>

namespace offload::kserve {

namespace {

grpc::Status invalid(const std::string& text) {
  return {grpc::StatusCode::INVALID_ARGUMENT, text};
}

/// "for model 'mlp'", with the client's request id when it gave one.
std::string where(const inference::ModelInferRequest& req) {
  std::string s = "model '" + req.model_name() + "'";
  if (!req.id().empty()) s += " (request id '" + req.id() + "')";
  return s;
}

/// Elements the typed `contents` field of `t` holds (FP16 and BF16 have none: raw only).
std::uint64_t contents_count(const inference::InferTensorContents& c, dtype t) {
  switch (t) {
    case dtype::f32: return std::uint64_t(c.fp32_contents_size());
    case dtype::f64: return std::uint64_t(c.fp64_contents_size());
    case dtype::i8:
    case dtype::i16:
    case dtype::i32: return std::uint64_t(c.int_contents_size());
    case dtype::i64: return std::uint64_t(c.int64_contents_size());
    case dtype::u8:
    case dtype::u16:
    case dtype::u32: return std::uint64_t(c.uint_contents_size());
    case dtype::u64: return std::uint64_t(c.uint64_contents_size());
    case dtype::boolean: return std::uint64_t(c.bool_contents_size());
    case dtype::f16:
    case dtype::bf16: return 0;
  }
  return 0;
}

/// Whether `t` has a typed contents field (every dtype but FP16 and BF16).
bool has_contents_field(dtype t) noexcept {
  return t != dtype::f16 && t != dtype::bf16;
}

/// The other typed fields that hold values (a client that filled the wrong one).
bool other_contents(const inference::InferTensorContents& c, dtype t) {
  const std::uint64_t all = std::uint64_t(c.bool_contents_size()) + std::uint64_t(c.int_contents_size()) +
                            std::uint64_t(c.int64_contents_size()) + std::uint64_t(c.uint_contents_size()) +
                            std::uint64_t(c.uint64_contents_size()) + std::uint64_t(c.fp32_contents_size()) +
                            std::uint64_t(c.fp64_contents_size()) + std::uint64_t(c.bytes_contents_size());
  return all != contents_count(c, t);
}

/// Narrows the 32-bit values of a shared typed field (INT8 and INT16 in int_contents, UINT8
/// and UINT16 in uint_contents) into `to`; the first value out of range, as text, else "".
template <class To, class From> std::string narrow(const google::protobuf::RepeatedField<From>& from, std::byte* to) {
  constexpr auto lo = std::numeric_limits<To>::min(), hi = std::numeric_limits<To>::max();
  for (int i = 0; i < from.size(); ++i) {
    const From v = from.Get(i);
    if (std::cmp_less(v, lo) || std::cmp_greater(v, hi))
      return "value " + std::to_string(v) + " (element " + std::to_string(i) + ") is outside " + std::to_string(+lo) +
             ".." + std::to_string(+hi);
    const To n = static_cast<To>(v);
    std::memcpy(to + std::size_t(i) * sizeof(To), &n, sizeof(To));
  }
  return {};
}

template <class T> void copy_field(const google::protobuf::RepeatedField<T>& from, std::byte* to) {
  if (!from.empty()) std::memcpy(to, from.data(), std::size_t(from.size()) * sizeof(T));
}

/// Copies a typed field into `to`: "" when done, else which value did not fit the dtype.
std::string copy_contents(const inference::InferTensorContents& c, dtype t, std::byte* to) {
  switch (t) {
    case dtype::f32: copy_field(c.fp32_contents(), to); return {};
    case dtype::f64: copy_field(c.fp64_contents(), to); return {};
    case dtype::i32: copy_field(c.int_contents(), to); return {};
    case dtype::i64: copy_field(c.int64_contents(), to); return {};
    case dtype::u32: copy_field(c.uint_contents(), to); return {};
    case dtype::u64: copy_field(c.uint64_contents(), to); return {};
    case dtype::i8: return narrow<std::int8_t>(c.int_contents(), to);
    case dtype::i16: return narrow<std::int16_t>(c.int_contents(), to);
    case dtype::u8: return narrow<std::uint8_t>(c.uint_contents(), to);
    case dtype::u16: return narrow<std::uint16_t>(c.uint_contents(), to);
    case dtype::boolean:
      for (int i = 0; i < c.bool_contents_size(); ++i) to[i] = c.bool_contents(i) ? std::byte{1} : std::byte{0};
      return {};
    case dtype::f16:
    case dtype::bf16: break;
  }
  return "the datatype has no typed contents field";
}

/// Whether `got` fits `declared` (same rank; each declared size other than -1 equal).
bool shape_fits(std::span<const std::int64_t> declared, std::span<const std::int64_t> got) {
  if (declared.size() != got.size()) return false;
  for (std::size_t i = 0; i < got.size(); ++i)
    if (got[i] < 0 || (declared[i] != -1 && declared[i] != got[i])) return false;
  return true;
}

/// A declared shape made concrete for `count` elements: the first dimension `rows` when that is
/// not negative, then a single -1 from the count; one dimension of `count` when it does not fit.
std::vector<std::int64_t> resolved_shape(std::vector<std::int64_t> dims, std::int64_t rows, std::uint64_t count) {
  if (rows >= 0 && !dims.empty()) dims[0] = rows;
  std::uint64_t known = 1;
  int unknown = -1, unknowns = 0;
  for (std::size_t i = 0; i < dims.size(); ++i) {
    if (dims[i] < 0) {
      unknown = int(i);
      ++unknowns;
    } else {
      known *= std::uint64_t(dims[i]);
    }
  }
  if (unknowns == 1 && known > 0 && count % known == 0) dims[std::size_t(unknown)] = std::int64_t(count / known);
  const auto n = shape_elements(dims);
  if (unknowns > 1 || !n || *n != count) return {std::int64_t(count)};
  return dims;
}

std::optional<std::int64_t> int_parameter(const google::protobuf::Map<std::string, inference::InferParameter>& p,
                                          const std::string& name, std::string& problem) {
  auto it = p.find(name);
  if (it == p.end()) return std::nullopt;
  if (it->second.parameter_choice_case() != inference::InferParameter::kInt64Param) {
    problem = "parameter '" + name + "' must be an int64_param";
    return std::nullopt;
  }
  return it->second.int64_param();
}

}  // namespace

std::string_view datatype_name(dtype t) noexcept {
  switch (t) {
    case dtype::f32: return "FP32";
    case dtype::f64: return "FP64";
    case dtype::i32: return "INT32";
    case dtype::i64: return "INT64";
    case dtype::u8: return "UINT8";
    case dtype::boolean: return "BOOL";
    case dtype::i8: return "INT8";
    case dtype::i16: return "INT16";
    case dtype::u16: return "UINT16";
    case dtype::u32: return "UINT32";
    case dtype::u64: return "UINT64";
    case dtype::f16: return "FP16";
    case dtype::bf16: return "BF16";
  }
  return "INVALID";
}

std::optional<dtype> dtype_of_datatype(std::string_view name) noexcept {
  for (auto t : all_dtypes)
    if (datatype_name(t) == name) return t;
  return std::nullopt;
}

inference::DataType config_type(dtype t) noexcept {
  switch (t) {
    case dtype::f32: return inference::TYPE_FP32;
    case dtype::f64: return inference::TYPE_FP64;
    case dtype::i32: return inference::TYPE_INT32;
    case dtype::i64: return inference::TYPE_INT64;
    case dtype::u8: return inference::TYPE_UINT8;
    case dtype::boolean: return inference::TYPE_BOOL;
    case dtype::i8: return inference::TYPE_INT8;
    case dtype::i16: return inference::TYPE_INT16;
    case dtype::u16: return inference::TYPE_UINT16;
    case dtype::u32: return inference::TYPE_UINT32;
    case dtype::u64: return inference::TYPE_UINT64;
    case dtype::f16: return inference::TYPE_FP16;
    case dtype::bf16: return inference::TYPE_BF16;
  }
  return inference::TYPE_INVALID;
}

check_result check_request(const inference::ModelInferRequest& req, const kernel& k, const model_io& io,
                           std::uint32_t kernel_id, const wire_limits& limits, host_pool& pool) {
  const bool raw = req.raw_input_contents_size() > 0;
  if (raw && req.raw_input_contents_size() != req.inputs_size())
    return {std::nullopt,
            invalid(where(req) + ": " + std::to_string(req.raw_input_contents_size()) + " raw_input_contents for " +
                    std::to_string(req.inputs_size()) + " inputs: give one per input, in the order of inputs")};
  // Which request input is each declared input.
  std::vector<int> given(io.inputs.size(), -1);
  for (int i = 0; i < req.inputs_size(); ++i) {
    const auto& in = req.inputs(i);
    std::size_t d = 0;
    while (d < io.inputs.size() && io.inputs[d].name != in.name()) ++d;
    if (d == io.inputs.size()) return {std::nullopt, invalid(where(req) + ": unexpected input '" + in.name() + "'")};
    if (given[d] >= 0) return {std::nullopt, invalid(where(req) + ": input '" + in.name() + "' given twice")};
    given[d] = i;
  }
  for (std::size_t d = 0; d < io.inputs.size(); ++d)
    if (given[d] < 0)
      return {std::nullopt,
              invalid(where(req) + ": expected " + std::to_string(io.inputs.size()) + " inputs, got " +
                      std::to_string(req.inputs_size()) + ": input '" + io.inputs[d].name + "' is missing")};

  checked_request out;
  out.call.model = req.model_name();
  out.call.version = std::string(k.version());
  out.call.id = req.id();
  std::vector<product_spec> specs;
  for (std::size_t d = 0; d < io.inputs.size(); ++d) {
    const auto& want = io.inputs[d];
    const auto& in = req.inputs(given[d]);
    if (in.datatype() != datatype_name(want.type))
      return {std::nullopt, invalid(where(req) + ": input '" + want.name + "' is " + in.datatype() +
                                    ", the model takes " + std::string(datatype_name(want.type)))};
    const std::span<const std::int64_t> got(in.shape().data(), std::size_t(in.shape_size()));
    const auto count = shape_elements(got);
    if (!shape_fits(want.dims, got) || !count)
      return {std::nullopt, invalid(where(req) + ": input '" + want.name + "' has shape " + shape_text(got) +
                                    ", the model takes " + shape_text(want.dims))};
    if (io.batched) {
      if (out.call.rows >= 0 && got[0] != out.call.rows)
        return {std::nullopt, invalid(where(req) + ": input '" + want.name + "' has " + std::to_string(got[0]) +
                                      " rows (first dimension), another input " + std::to_string(out.call.rows))};
      out.call.rows = got[0];
    }
    if (raw && in.has_contents())
      return {std::nullopt, invalid(where(req) + ": input '" + want.name +
                                    "' has contents as well as raw_input_contents: give one or the other")};
    const std::uint64_t bytes = *count * dtype_size(want.type);
    if (raw && req.raw_input_contents(given[d]).size() != bytes)
      return {std::nullopt, invalid(where(req) + ": input '" + want.name + "' of shape " + shape_text(got) + " is " +
                                    std::to_string(bytes) + " bytes, raw_input_contents holds " +
                                    std::to_string(req.raw_input_contents(given[d]).size()))};
    if (!raw && !has_contents_field(want.type))
      return {std::nullopt, invalid(where(req) + ": input '" + want.name + "' is " + in.datatype() +
                                    ", which has no typed contents field: send it in raw_input_contents")};
    if (!raw) {
      if (other_contents(in.contents(), want.type) || contents_count(in.contents(), want.type) != *count)
        return {std::nullopt,
                invalid(where(req) + ": input '" + want.name + "' of shape " + shape_text(got) + " needs " +
                        std::to_string(*count) + " values in the contents field of " + in.datatype() + ", got " +
                        std::to_string(contents_count(in.contents(), want.type)) +
                        (other_contents(in.contents(), want.type) ? " (and values in another type's field)" : ""))};
    }
    specs.push_back({want.name, want.type, *count, dims_t(got.begin(), got.end())});
    out.call.bytes_in += bytes;
  }
  // Requested outputs: by name, in the order asked; none: every output.
  for (int o = 0; o < req.outputs_size(); ++o) {
    std::size_t d = 0;
    while (d < io.outputs.size() && io.outputs[d].name != req.outputs(o).name()) ++d;
    if (d == io.outputs.size())
      return {std::nullopt, invalid(where(req) + ": unexpected output '" + req.outputs(o).name() + "'")};
    out.call.outputs.push_back(d);
  }
  if (req.outputs_size() == 0)
    for (std::size_t d = 0; d < io.outputs.size(); ++d) out.call.outputs.push_back(d);

  message_info info{message_kind::request, 0, kernel_id, status::ok, {}};
  std::string problem;
  if (auto timeout_us = int_parameter(req.parameters(), "timeout", problem); timeout_us && *timeout_us > 0)
    info.times[request_timeout_ns] = std::uint64_t(*timeout_us) * 1000;
  if (auto priority = int_parameter(req.parameters(), "priority", problem); priority && *priority > 0)
    info.times[request_priority] = std::uint64_t(*priority);
  if (!problem.empty()) return {std::nullopt, invalid(where(req) + ": " + problem)};

  if (auto bad = check_specs(specs, limits)) return {std::nullopt, invalid(where(req) + ": " + bad->text)};
  const std::uint64_t total = message_writer::size_for(specs);
  if (total > limits.max_message_bytes)
    return {std::nullopt,
            {grpc::StatusCode::RESOURCE_EXHAUSTED,
             where(req) + ": the request's tensors take " + std::to_string(total) +
                 " bytes as a message, over this server's limit of " + std::to_string(limits.max_message_bytes)}};
  message_writer w(info, specs, pool.acquire(std::size_t(total)));
  for (std::size_t d = 0; d < io.inputs.size(); ++d) {
    const auto& in = req.inputs(given[d]);
    auto to = w.payload(d);
    if (raw) {
      if (!to.empty()) std::memcpy(to.data(), req.raw_input_contents(given[d]).data(), to.size());
    } else if (auto bad = copy_contents(in.contents(), specs[d].type, to.data()); !bad.empty()) {
      return {std::nullopt, invalid(where(req) + ": input '" + specs[d].name + "' (" + in.datatype() + "): " + bad)};
    }
  }
  out.message = std::move(w).finish();
  return {std::move(out), grpc::Status::OK};
}

grpc::Status fill_response(const message_view& reply, const model_io& io, const infer_call& call,
                           inference::ModelInferResponse& out) {
  out.set_model_name(call.model);
  out.set_model_version(call.version);
  out.set_id(call.id);
  for (auto d : call.outputs) {
    const auto& want = io.outputs[d];
    const product_view* p = reply.products.find(want.name);
    if (p == nullptr || p->type != want.type)
      return {grpc::StatusCode::INTERNAL, "model '" + call.model + "' gave no " +
                                              std::string(datatype_name(want.type)) + " output '" + want.name +
                                              "' (a defect of its kernel's declared outputs)"};
    // The kernel's own shape when it gave one, else the declared one made concrete.
    const auto shape = !p->dims.empty() ? p->shape() : resolved_shape(want.dims, io.batched ? call.rows : -1, p->count);
    auto* t = out.add_outputs();
    t->set_name(want.name);
    t->set_datatype(std::string(datatype_name(want.type)));
    for (auto s : shape) t->add_shape(s);
    out.add_raw_output_contents(reinterpret_cast<const char*>(p->data), std::size_t(p->size_bytes()));
  }
  return grpc::Status::OK;
}

grpc::Status status_of_error(status s, const std::string& text) {
  switch (s) {
    case status::bad_input: return {grpc::StatusCode::INVALID_ARGUMENT, text};
    case status::unknown_kernel: return {grpc::StatusCode::NOT_FOUND, text};
    case status::too_large: return {grpc::StatusCode::RESOURCE_EXHAUSTED, text};
    case status::busy: return {grpc::StatusCode::UNAVAILABLE, "busy: " + text};
    case status::expired: return {grpc::StatusCode::DEADLINE_EXCEEDED, "expired: " + text};
    default: return {grpc::StatusCode::INTERNAL, std::string(to_string(s)) + ": " + text};
  }
}

void fill_request(const product_views& inputs, const model_io& io, const std::string& model, const std::string& version,
                  std::uint64_t request_id, inference::ModelInferRequest& out) {
  out.set_model_name(model);
  out.set_model_version(version);
  out.set_id(std::to_string(request_id));
  std::int64_t rows = -1;  // a batched kernel's rows, from its first declared input present
  for (const auto& p : inputs) {
    auto* t = out.add_inputs();
    t->set_name(std::string(p.name));
    t->set_datatype(std::string(datatype_name(p.type)));
    const tensor_spec* spec = nullptr;
    for (const auto& d : io.inputs)
      if (d.name == p.name) spec = &d;
    std::vector<std::int64_t> shape = p.shape();
    if (p.dims.empty() && spec != nullptr && !spec->dims.empty()) {
      shape = resolved_shape(spec->dims, io.batched ? rows : -1, p.count);  // (a misfit: the server says so)
      if (io.batched && rows < 0 && shape.size() == spec->dims.size()) rows = shape[0];
    }
    for (auto d : shape) t->add_shape(d);
    out.add_raw_input_contents(reinterpret_cast<const char*>(p.data), std::size_t(p.size_bytes()));
  }
  for (const auto& d : io.outputs) out.add_outputs()->set_name(d.name);
}

response_products read_response(const inference::ModelInferResponse& r) {
  response_products out;
  const bool raw = r.raw_output_contents_size() > 0;
  if (raw && r.raw_output_contents_size() != r.outputs_size()) {
    out.problem = std::to_string(r.raw_output_contents_size()) + " raw_output_contents for " +
                  std::to_string(r.outputs_size()) + " outputs";
    return out;
  }
  out.typed.resize(std::size_t(r.outputs_size()));
  for (int i = 0; i < r.outputs_size(); ++i) {
    const auto& o = r.outputs(i);
    const auto type = dtype_of_datatype(o.datatype());
    if (!type) {
      out.problem = "output '" + o.name() + "' is " + o.datatype() + ", a datatype mpi-offload's products have not";
      return out;
    }
    const std::span<const std::int64_t> dims(o.shape().data(), std::size_t(o.shape_size()));
    const auto count = shape_elements(dims);
    if (!count || std::any_of(dims.begin(), dims.end(), [](std::int64_t d) { return d < 0; })) {
      out.problem = "output '" + o.name() + "' has shape " + shape_text(dims);
      return out;
    }
    const std::uint64_t bytes = *count * dtype_size(*type);
    std::string_view data;
    if (raw) {
      data = r.raw_output_contents(i);
    } else {
      if (other_contents(o.contents(), *type) || contents_count(o.contents(), *type) != *count) {
        out.problem = "output '" + o.name() + "' of shape " + shape_text(dims) + " has not " + std::to_string(*count) +
                      " values in the contents field of " + o.datatype();
        return out;
      }
      auto& held = out.typed[std::size_t(i)];
      held.resize(bytes);
      if (auto bad = copy_contents(o.contents(), *type, reinterpret_cast<std::byte*>(held.data())); !bad.empty()) {
        out.problem = "output '" + o.name() + "' (" + o.datatype() + "): " + bad;
        return out;
      }
      data = held;
    }
    if (data.size() != bytes) {
      out.problem = "output '" + o.name() + "' of shape " + shape_text(dims) + " is " + std::to_string(bytes) +
                    " bytes, the response holds " + std::to_string(data.size());
      return out;
    }
    out.specs.push_back({o.name(), *type, *count, dims.size() > 1 ? dims_t(dims.begin(), dims.end()) : dims_t{}});
    out.bytes.push_back(data);
  }
  return out;
}

status status_of_grpc(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::NOT_FOUND: return status::unknown_kernel;
    case grpc::StatusCode::INVALID_ARGUMENT: return status::bad_input;
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return status::too_large;
    case grpc::StatusCode::DEADLINE_EXCEEDED: return status::expired;
    case grpc::StatusCode::UNAVAILABLE: return status::busy;
    default: return status::kernel_failed;
  }
}

std::span<const std::byte> readable(const outgoing_message& m, host_pool& pool, buffer& scratch) {
  if (m.contiguous()) return m.head;
  scratch = pool.acquire(std::size_t(m.total_size));
  m.flatten(scratch.span());
  return scratch.span();
}

}  // namespace offload::kserve
