// The !gguf weight type (FORMATS.md §6): registration and reference dequantization.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "llvm/ADT/StringRef.h"

#include "ir/weight_type.h"

namespace qlc::schemes {

/// ggml type id of a `type = ...` name accepted by !gguf (Q4_0 ... Q6_K, F16, BF16, F32).
std::optional<uint32_t> ggufTypeId(llvm::StringRef name);

/// Reference dequantization of one GGUF weight (or one expert of a stack) to f32 [N, K], row by
/// row with qlc::gguf::dequantizeRow (each GGUF row is one output channel, §6.2).
std::string dequantizeGguf(const WeightType &t, const PartBytesMap &parts, float *out);

} // namespace qlc::schemes
