// Tensor types: the type of every SSA value and of dense weights.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "llvm/ADT/StringRef.h"

namespace qlc {

enum class ElemKind : uint8_t { F32, F16, BF16, I8, U8, I32, I64 };

llvm::StringRef elemKindName(ElemKind k);
std::optional<ElemKind> parseElemKind(llvm::StringRef s);
unsigned elemKindBytes(ElemKind k);
bool isFloat(ElemKind k);

/// tensor<AxBx?xf32>. A dim of kDynamic prints as '?'.
struct TensorType {
  static constexpr int64_t kDynamic = -1;
  ElemKind elem = ElemKind::F32;
  std::vector<int64_t> dims;

  TensorType() = default;
  TensorType(ElemKind e, std::vector<int64_t> d) : elem(e), dims(std::move(d)) {}

  size_t rank() const { return dims.size(); }
  bool isStatic() const;
  /// Product of the dims, or nullopt if dynamic or overflowing int64.
  std::optional<int64_t> numElements() const;
  /// Byte size of a static tensor, or nullopt if dynamic or overflowing.
  std::optional<int64_t> numBytes() const;
  std::string str() const;
  friend bool operator==(const TensorType &, const TensorType &) = default;
};

/// Two dims agree if equal or either is dynamic.
inline bool dimsCompatible(int64_t a, int64_t b) {
  return a == b || a == TensorType::kDynamic || b == TensorType::kDynamic;
}
/// Same element type, same rank, pairwise compatible dims.
bool typesCompatible(const TensorType &a, const TensorType &b);
/// "[4, ?, 8]" for messages.
std::string dimsStr(const std::vector<int64_t> &dims);

} // namespace qlc
