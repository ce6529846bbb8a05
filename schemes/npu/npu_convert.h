// Weight conversions between the checkpoint types and the Ascend NPU types, on the quantized bits
// (nothing is dequantized). Used by npu-layout-rewrite; the inverse (NPU → AWQ) exists for tests:
// rewrite followed by the inverse must give back the checkpoint's bits.
#pragma once
#include <string>
#include <vector>

#include "llvm/Support/Error.h"

#include "ir/ir.h"

namespace qlc {
class WeightStore;

namespace schemes {

/// A weight's new type and parts (to be installed with Weight::setType and parts()).
struct ConvertedWeight {
  WeightSymbolType type;
  std::vector<WeightPart> parts;
};

/// !awq 4-bit (plain or expert stack) → !npu_w4, FORMATS.md §5.2: weight words in natural nibble
/// order XOR 0x88888888, antiquant_offset = 8 − z in the scales' dtype, antiquant_scale = the
/// scales part unchanged (still `from` the checkpoint if it was).
llvm::Expected<ConvertedWeight> awqToNpuW4(const Weight &w, const WeightStore *store);

/// !w8a8 → !npu_w8a8, FORMATS.md §5.4: weight [N, K] → [K, N], weight_scale [N, 1] → f32 [N],
/// weight_offset [N, 1] → [N] (same dtype).
llvm::Expected<ConvertedWeight> w8a8ToNpuW8a8(const Weight &w, const WeightStore *store);

/// Concatenates two !npu_w4 expert stacks of the same group, K and part dtypes along N per expert
/// (w13 = [gate ; up]); natural column order makes this a plain concatenation of words.
/// `gateW` / `upW` are the weights the two were converted from (named in errors).
llvm::Expected<ConvertedWeight> concatNpuW4(const Weight &gateW, const ConvertedWeight &gate,
                                            const Weight &upW, const ConvertedWeight &up,
                                            const WeightStore *store);

/// Test-only inverse of awqToNpuW4: !npu_w4 → !awq<group, shape> with qweight, qzeros (from
/// antiquant_offset, which must be 8 − z for 4-bit z) and scales (antiquant_scale unchanged).
llvm::Expected<ConvertedWeight> npuW4ToAwq(const Weight &w, const WeightStore *store);

} // namespace schemes
} // namespace qlc
