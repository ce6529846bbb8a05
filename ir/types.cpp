#include "ir/types.h"

namespace qlc {

llvm::StringRef elemKindName(ElemKind k) {
  switch (k) {
  case ElemKind::F32: return "f32";
  case ElemKind::F16: return "f16";
  case ElemKind::BF16: return "bf16";
  case ElemKind::I8: return "i8";
  case ElemKind::U8: return "u8";
  case ElemKind::I32: return "i32";
  case ElemKind::I64: return "i64";
  }
  return "?";
}

std::optional<ElemKind> parseElemKind(llvm::StringRef s) {
  for (ElemKind k : {ElemKind::F32, ElemKind::F16, ElemKind::BF16, ElemKind::I8, ElemKind::U8,
                     ElemKind::I32, ElemKind::I64})
    if (elemKindName(k) == s)
      return k;
  return std::nullopt;
}

unsigned elemKindBytes(ElemKind k) {
  switch (k) {
  case ElemKind::F32: case ElemKind::I32: return 4;
  case ElemKind::F16: case ElemKind::BF16: return 2;
  case ElemKind::I8: case ElemKind::U8: return 1;
  case ElemKind::I64: return 8;
  }
  return 0;
}

bool isFloat(ElemKind k) { return k == ElemKind::F32 || k == ElemKind::F16 || k == ElemKind::BF16; }

bool TensorType::isStatic() const {
  for (int64_t d : dims)
    if (d == kDynamic)
      return false;
  return true;
}

std::optional<int64_t> TensorType::numElements() const {
  int64_t n = 1;
  for (int64_t d : dims) {
    if (d < 0 || __builtin_mul_overflow(n, d, &n))
      return std::nullopt;
  }
  return n;
}

std::optional<int64_t> TensorType::numBytes() const {
  auto n = numElements();
  int64_t b;
  if (!n || __builtin_mul_overflow(*n, int64_t(elemKindBytes(elem)), &b))
    return std::nullopt;
  return b;
}

std::string TensorType::str() const {
  std::string s = "tensor<";
  for (int64_t d : dims) {
    s += d == kDynamic ? std::string("?") : std::to_string(d);
    s += "x";
  }
  s += elemKindName(elem).str();
  s += ">";
  return s;
}

bool typesCompatible(const TensorType &a, const TensorType &b) {
  if (a.elem != b.elem || a.rank() != b.rank())
    return false;
  for (size_t i = 0; i < a.rank(); ++i)
    if (!dimsCompatible(a.dims[i], b.dims[i]))
      return false;
  return true;
}

std::string dimsStr(const std::vector<int64_t> &dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i)
      s += ", ";
    s += dims[i] == TensorType::kDynamic ? std::string("?") : std::to_string(dims[i]);
  }
  return s + "]";
}

} // namespace qlc
