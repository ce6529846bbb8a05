#include "runtime/tensor.h"

#include <cassert>
#include <cmath>
#include <cstring>
#include <limits>

#include "support/float16.h"

namespace qlc {

Tensor::Tensor(ElemKind elem, std::vector<int64_t> shape) : elem_(elem), shape_(std::move(shape)) {
  bytes_.assign(size_t(numElements()) * elemKindBytes(elem_), 0);
}

int64_t Tensor::numElements() const {
  int64_t n = 1;
  for (int64_t d : shape_)
    n *= d;
  return n;
}

Tensor Tensor::fromF32(std::vector<int64_t> shape, const std::vector<float> &values) {
  return fromF32As(ElemKind::F32, std::move(shape), values);
}

template <typename T> static T saturate(float v) {
  double r = std::round(double(v)); // half away from zero
  if (std::isnan(v))
    return 0;
  r = std::min(r, double(std::numeric_limits<T>::max()));
  r = std::max(r, double(std::numeric_limits<T>::lowest()));
  return T(r);
}

Tensor Tensor::fromF32As(ElemKind elem, std::vector<int64_t> shape, const std::vector<float> &v) {
  Tensor t(elem, std::move(shape));
  assert(int64_t(v.size()) == t.numElements());
  uint8_t *p = t.data();
  for (size_t i = 0; i < v.size(); ++i) {
    switch (elem) {
    case ElemKind::F32: std::memcpy(p + 4 * i, &v[i], 4); break;
    case ElemKind::F16: {
      uint16_t h = floatToHalf(v[i]);
      std::memcpy(p + 2 * i, &h, 2);
      break;
    }
    case ElemKind::BF16: {
      uint16_t h = floatToBf16(v[i]);
      std::memcpy(p + 2 * i, &h, 2);
      break;
    }
    case ElemKind::I8: {
      int8_t x = saturate<int8_t>(v[i]);
      std::memcpy(p + i, &x, 1);
      break;
    }
    case ElemKind::U8: p[i] = saturate<uint8_t>(v[i]); break;
    case ElemKind::I32: {
      int32_t x = saturate<int32_t>(v[i]);
      std::memcpy(p + 4 * i, &x, 4);
      break;
    }
    case ElemKind::I64: {
      int64_t x = saturate<int64_t>(v[i]);
      std::memcpy(p + 8 * i, &x, 8);
      break;
    }
    }
  }
  return t;
}

std::vector<float> Tensor::toF32() const {
  size_t n = size_t(numElements());
  std::vector<float> out(n);
  const uint8_t *p = data();
  for (size_t i = 0; i < n; ++i) {
    switch (elem_) {
    case ElemKind::F32: std::memcpy(&out[i], p + 4 * i, 4); break;
    case ElemKind::F16: {
      uint16_t h;
      std::memcpy(&h, p + 2 * i, 2);
      out[i] = halfToFloat(h);
      break;
    }
    case ElemKind::BF16: {
      uint16_t h;
      std::memcpy(&h, p + 2 * i, 2);
      out[i] = bf16ToFloat(h);
      break;
    }
    case ElemKind::I8: out[i] = float(int8_t(p[i])); break;
    case ElemKind::U8: out[i] = float(p[i]); break;
    case ElemKind::I32: {
      int32_t x;
      std::memcpy(&x, p + 4 * i, 4);
      out[i] = float(x);
      break;
    }
    case ElemKind::I64: {
      int64_t x;
      std::memcpy(&x, p + 8 * i, 8);
      out[i] = float(x);
      break;
    }
    }
  }
  return out;
}

} // namespace qlc
