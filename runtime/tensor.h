// Host tensors: a shape, an element type and owned bytes. The runtime's unit of data.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ir/types.h"

namespace qlc {

class Tensor {
public:
  Tensor() = default;
  /// Zero-filled tensor.
  Tensor(ElemKind elem, std::vector<int64_t> shape);
  /// f32 tensor holding `values` (size must equal the shape's element count).
  static Tensor fromF32(std::vector<int64_t> shape, const std::vector<float> &values);

  ElemKind elem() const { return elem_; }
  const std::vector<int64_t> &shape() const { return shape_; }
  int64_t numElements() const;
  size_t numBytes() const { return bytes_.size(); }
  uint8_t *data() { return bytes_.data(); }
  const uint8_t *data() const { return bytes_.data(); }
  TensorType type() const { return TensorType(elem_, shape_); }

  /// Every element converted to f32 (f16/bf16 exactly, integers by value).
  std::vector<float> toF32() const;
  /// Same shape, element type `elem`, values converted from f32 (round to nearest even; integers
  /// round half away from zero and saturate).
  static Tensor fromF32As(ElemKind elem, std::vector<int64_t> shape, const std::vector<float> &v);
  /// "tensor<2x3xf32>" for messages.
  std::string typeStr() const { return type().str(); }

private:
  ElemKind elem_ = ElemKind::F32;
  std::vector<int64_t> shape_;
  std::vector<uint8_t> bytes_;
};

} // namespace qlc
