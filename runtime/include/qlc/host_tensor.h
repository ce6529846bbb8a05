// qlc's public tensor: a dense row-major host array with a shape and an element type, owning its
// bytes. The runtime API's inputs and outputs. Self-contained (standard library only).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace qlc {

/// Element types a program takes and returns: activations in f32 / f16 / bf16, token ids in
/// i32 / i64 (functions such as @embed).
enum class DataType : uint8_t { f32, f16, bf16, i32, i64 };

/// "f32", "f16", "bf16", "i32", "i64".
const char *data_type_name(DataType t);
/// Bytes per element.
unsigned data_type_size(DataType t);

class HostTensor {
public:
  /// An empty f32 tensor of shape [0].
  HostTensor();
  /// Zero-filled. Negative dims are clamped to 0.
  HostTensor(DataType dtype, std::vector<int64_t> shape);
  /// `values` converted to `dtype` (f16 / bf16: round to nearest even; integers: rounded and
  /// saturated). values.size() must equal the shape's element count; if it does not, the tensor
  /// is zero-filled instead (check with num_elements()).
  static HostTensor from_f32(std::vector<int64_t> shape, const std::vector<float> &values,
                             DataType dtype = DataType::f32);

  DataType dtype() const { return dtype_; }
  const std::vector<int64_t> &shape() const { return shape_; }
  int64_t num_elements() const;
  size_t num_bytes() const { return bytes_.size(); }
  uint8_t *data() { return bytes_.data(); }
  const uint8_t *data() const { return bytes_.data(); }

  /// Every element as f32 (f16 / bf16 exactly, integers by value).
  std::vector<float> to_f32() const;
  /// "tensor<4x64xf32>".
  std::string type_str() const;

  /// Same dtype, shape and bytes (bit-identical).
  bool operator==(const HostTensor &o) const {
    return dtype_ == o.dtype_ && shape_ == o.shape_ && bytes_ == o.bytes_;
  }

private:
  DataType dtype_;
  std::vector<int64_t> shape_;
  std::vector<uint8_t> bytes_;
};

} // namespace qlc
