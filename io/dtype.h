// Element types of safetensors tensors (the dtype strings of the safetensors header).
#pragma once
#include "llvm/ADT/StringRef.h"

#include <cstddef>
#include <cstdint>
#include <optional>

#include "ir/types.h"

namespace qlc::io {

enum class DType : uint8_t { F64, F32, F16, BF16, I64, I32, I16, I8, U64, U32, U16, U8, Bool };

/// Bytes per element (Bool is one byte, as in safetensors).
size_t dtypeSize(DType t);

/// The safetensors spelling: "F64", "F32", "F16", "BF16", "I64", ..., "U8", "BOOL".
llvm::StringRef safetensorsName(DType t);

/// Inverse of safetensorsName; nullopt for dtypes qlc does not handle (e.g. "F8_E4M3").
std::optional<DType> parseSafetensorsDType(llvm::StringRef name);

/// The IR element type of a stored dtype (nullopt for those the IR has none of, e.g. F64), and back.
std::optional<ElemKind> elemKindOf(DType t);
DType dtypeOf(ElemKind k);

} // namespace qlc::io
