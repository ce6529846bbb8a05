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

} // namespace qlc::io
