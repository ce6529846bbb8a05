// The public tensor and its conversions to the runtime's internal Tensor.
#include <cstring>

#include "qlc/host_tensor.h"
#include "runtime/api/api_internal.h"

namespace qlc {

const char *data_type_name(DataType t) {
  switch (t) {
  case DataType::f32: return "f32";
  case DataType::f16: return "f16";
  case DataType::bf16: return "bf16";
  case DataType::i32: return "i32";
  case DataType::i64: return "i64";
  }
  return "?";
}

unsigned data_type_size(DataType t) { return elemKindBytes(api::internalType(t)); }

HostTensor::HostTensor() : dtype_(DataType::f32), shape_{0} {}

static int64_t elementCount(std::vector<int64_t> &shape) {
  int64_t n = 1;
  for (int64_t &d : shape) {
    if (d < 0)
      d = 0;
    n *= d;
  }
  return n;
}

HostTensor::HostTensor(DataType dtype, std::vector<int64_t> shape)
    : dtype_(dtype), shape_(std::move(shape)) {
  bytes_.assign(size_t(elementCount(shape_)) * data_type_size(dtype), 0);
}

HostTensor HostTensor::from_f32(std::vector<int64_t> shape, const std::vector<float> &values,
                                DataType dtype) {
  HostTensor t(dtype, std::move(shape));
  if (int64_t(values.size()) != t.num_elements())
    return t;
  Tensor in = Tensor::fromF32As(api::internalType(dtype), t.shape_, values);
  std::memcpy(t.bytes_.data(), in.data(), in.numBytes());
  return t;
}

int64_t HostTensor::num_elements() const {
  int64_t n = 1;
  for (int64_t d : shape_)
    n *= d;
  return n;
}

std::vector<float> HostTensor::to_f32() const { return api::toInternal(*this).toF32(); }

std::string HostTensor::type_str() const { return api::toInternal(*this).typeStr(); }

namespace api {

ElemKind internalType(DataType t) {
  switch (t) {
  case DataType::f32: return ElemKind::F32;
  case DataType::f16: return ElemKind::F16;
  case DataType::bf16: return ElemKind::BF16;
  case DataType::i32: return ElemKind::I32;
  case DataType::i64: return ElemKind::I64;
  }
  return ElemKind::F32;
}

DataType publicType(ElemKind k, bool &ok) {
  ok = true;
  switch (k) {
  case ElemKind::F32: return DataType::f32;
  case ElemKind::F16: return DataType::f16;
  case ElemKind::BF16: return DataType::bf16;
  case ElemKind::I32: return DataType::i32;
  case ElemKind::I64: return DataType::i64;
  default: ok = false; return DataType::f32;
  }
}

Tensor toInternal(const HostTensor &t) {
  Tensor r(internalType(t.dtype()), t.shape());
  std::memcpy(r.data(), t.data(), std::min(r.numBytes(), t.num_bytes()));
  return r;
}

HostTensor toPublic(const Tensor &t) {
  bool ok;
  DataType dt = publicType(t.elem(), ok);
  if (!ok) // an i8 / u8 result: widen to f32 by value
    return HostTensor::from_f32(t.shape(), t.toF32(), DataType::f32);
  HostTensor r(dt, t.shape());
  std::memcpy(r.data(), t.data(), t.numBytes());
  return r;
}

} // namespace api
} // namespace qlc
