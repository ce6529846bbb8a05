// The ggml tensor type table (FORMATS.md §6.3, block sizes from ggml-common.h static_asserts).
#pragma once
#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <optional>

namespace qlc::io {

/// Well-known ggml type ids (the values stored in GGUF tensor infos).
namespace ggml {
enum : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22,
  IQ4_XS = 23, I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30,
  TQ1_0 = 34, TQ2_0 = 35, MXFP4 = 39, NVFP4 = 40,
};
} // namespace ggml

struct GgmlTypeTraits {
  uint32_t id;
  llvm::StringRef name; ///< ggml spelling, e.g. "Q4_K"
  uint32_t blockSize;   ///< elements per block (1 for plain types)
  uint32_t typeSize;    ///< bytes per block
  bool quantized;       ///< block-quantized (not a plain float/int element type)
};

/// Traits of a live type id; nullptr for unknown ids and for removed ones (4, 5, 31-33, 36-38).
const GgmlTypeTraits *ggmlTypeTraits(uint32_t id);

/// Every live type, in id order.
llvm::ArrayRef<GgmlTypeTraits> ggmlAllTypes();

/// Id from the ggml name ("Q4_K", "F16", case-sensitive).
std::optional<uint32_t> ggmlTypeByName(llvm::StringRef name);

/// Bytes of one row of ne0 elements; errors for unknown types, negative ne0, ne0 not a multiple
/// of the block size, or overflow.
llvm::Expected<uint64_t> ggmlRowBytes(uint32_t type, int64_t ne0);

/// Bytes of a whole tensor with GGUF dims ne (ne[0] contiguous; empty ne = one element),
/// overflow-checked: nbytes = ne0/blck * typeSize * ne1 * ne2 * ... (FORMATS.md §6.1).
llvm::Expected<uint64_t> ggmlTensorBytes(uint32_t type, llvm::ArrayRef<int64_t> ne);

} // namespace qlc::io
