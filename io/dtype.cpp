#include "io/dtype.h"

namespace qlc::io {

namespace {
struct DTypeInfo {
  DType type;
  const char *name;
  size_t size;
};
// Indexed by the enum value; keep in enum order.
constexpr DTypeInfo kDTypes[] = {
    {DType::F64, "F64", 8}, {DType::F32, "F32", 4}, {DType::F16, "F16", 2},
    {DType::BF16, "BF16", 2}, {DType::I64, "I64", 8}, {DType::I32, "I32", 4},
    {DType::I16, "I16", 2}, {DType::I8, "I8", 1}, {DType::U64, "U64", 8},
    {DType::U32, "U32", 4}, {DType::U16, "U16", 2}, {DType::U8, "U8", 1},
    {DType::Bool, "BOOL", 1},
};
static_assert(sizeof(kDTypes) / sizeof(kDTypes[0]) == size_t(DType::Bool) + 1);
} // namespace

size_t dtypeSize(DType t) { return kDTypes[size_t(t)].size; }

llvm::StringRef safetensorsName(DType t) { return kDTypes[size_t(t)].name; }

std::optional<DType> parseSafetensorsDType(llvm::StringRef name) {
  for (const DTypeInfo &d : kDTypes)
    if (name == d.name)
      return d.type;
  return std::nullopt;
}

std::optional<ElemKind> elemKindOf(DType t) {
  switch (t) {
  case DType::F32: return ElemKind::F32;
  case DType::F16: return ElemKind::F16;
  case DType::BF16: return ElemKind::BF16;
  case DType::I8: return ElemKind::I8;
  case DType::U8: return ElemKind::U8;
  case DType::I32: return ElemKind::I32;
  case DType::I64: return ElemKind::I64;
  default: return std::nullopt;
  }
}

DType dtypeOf(ElemKind k) {
  switch (k) {
  case ElemKind::F32: return DType::F32;
  case ElemKind::F16: return DType::F16;
  case ElemKind::BF16: return DType::BF16;
  case ElemKind::I8: return DType::I8;
  case ElemKind::U8: return DType::U8;
  case ElemKind::I32: return DType::I32;
  case ElemKind::I64: return DType::I64;
  }
  return DType::U8;
}

} // namespace qlc::io
