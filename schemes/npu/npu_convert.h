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

/// The integer form of an antiquant weight, per expert e (row-major [E][K][N] / [E][K/G][N]):
///   W_e[n][k] = (q[e][k][n] − z[e][k/G][n]) · scale[e][k/G][n]
/// with q unsigned codes of `bits` bits and z the real zero point in the same domain (GPTQ v1's
/// stored zero + 1, CT's stored zero point, AWQ's zero). `z` empty = symmetric (z = 2^(bits−1)).
struct IntegerCodes {
  int bits = 0;
  int64_t experts = 1, k = 0, n = 0, group = 0; ///< group resolved: K for one group / per-channel
  std::vector<uint8_t> q;
  std::vector<int32_t> z;
};

/// Reads the codes of an !awq, !gptq or !ct_wna16 weight (the checkpoint's own bits, decoded with
/// the scheme's codec). Errors as npuLayoutBlocker, plus sym GPTQ whose qzeros are not 2^(b−1).
llvm::Expected<IntegerCodes> checkpointCodes(const Weight &w, const WeightStore *store);
/// Reads the codes of an !npu_w4 / !npu_w8 weight back: q = c + 2^(b−1), z = 2^(b−1) − offset
/// (no antiquant_offset: symmetric). Test-side inverse of checkpointToNpu.
llvm::Expected<IntegerCodes> npuCodes(const Weight &w, const WeightStore *store);

/// "" if checkpointToNpu converts `w` exactly; else why not (bits other than 4 / 8, act-order g_idx
/// that is not k / G, groups that do not tile K, 4-bit N not a multiple of 8). Reads g_idx.
std::string npuLayoutBlocker(const Weight &w, const WeightStore *store);

/// !awq (4 / 8-bit), !gptq (4 / 8-bit, sym / asym, v1 / v2, trivial g_idx) and !ct_wna16 (4 /
/// 8-bit, sym / asym, group / channel), plain or expert-stacked → !npu_w4 (4-bit) / !npu_w8
/// (8-bit): signed codes c = q − 2^(b−1), antiquant_offset = 2^(b−1) − z in the scales' dtype
/// (absent when symmetric: offset 0, as sglang's CT path), antiquant_scale [.., K/G, N] (CT's [N,
/// K/G] transposed). (c + offset) · s = (q − z) · s with an exact integer sum, so the antiquant
/// equals the checkpoint's dequantization bit for bit. 4-bit AWQ goes through awqToNpuW4.
llvm::Expected<ConvertedWeight> checkpointToNpu(const Weight &w, const WeightStore *store);

/// !w8a8 → !npu_w8a8, FORMATS.md §5.4: weight [N, K] → [K, N], weight_scale [N, 1] → f32 [N],
/// weight_offset [N, 1] → [N] (same dtype).
llvm::Expected<ConvertedWeight> w8a8ToNpuW8a8(const Weight &w, const WeightStore *store);

/// Concatenates two !npu_w4 (or two !npu_w8) expert stacks of the same group, K and part dtypes
/// along N per expert (w13 = [gate ; up]); natural column order makes this a plain concatenation of
/// words. `gateW` / `upW` are the weights the two were converted from (named in errors).
llvm::Expected<ConvertedWeight> concatNpuW4(const Weight &gateW, const ConvertedWeight &gate,
                                            const Weight &upW, const ConvertedWeight &up,
                                            const WeightStore *store);

/// Test-only inverse of awqToNpuW4: !npu_w4 → !awq<group, shape> with qweight, qzeros (from
/// antiquant_offset, which must be 8 − z for 4-bit z) and scales (antiquant_scale unchanged).
llvm::Expected<ConvertedWeight> npuW4ToAwq(const Weight &w, const WeightStore *store);

} // namespace schemes
} // namespace qlc
