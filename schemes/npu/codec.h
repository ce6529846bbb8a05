// Ascend NPU weight layouts (FORMATS.md §5.1, §5.2): int4 carried in int32 with element 8i+j in
// bits [4j, 4j+3] (natural column order, two's complement) and the AWQ → NPU conversion of sglang's
// AWQAscendLinearKernel. Pure functions, no LLVM; the weight types, the ops and the
// npu-layout-rewrite pass are built on them.
//
// Layouts (row-major, int32 tensors handled as uint32_t bit containers):
//   weight [K, N/8]   antiquant_scale [K/G, N]   antiquant_offset [K/G, N]
//   dequant  W[k][n] = (int4(weight[k][n/8] nibble n%8) + offset[k/G][n]) * scale[k/G][n]
// The offset is ADDED (aclnnWeightQuantBatchMatmulV2: (weight + antiquantOffset) * antiquantScale).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace qlc::npu {

/// The XOR that turns an unsigned nibble u into the two's-complement int4 of u − 8 (§5.2 step 2):
/// flipping bit 3 maps u < 8 to u + 8 ≡ u − 8 (mod 16) and u >= 8 to u − 8.
inline constexpr uint32_t kSignFlip = 0x88888888u;

/// AWQ-interleaved word → natural column order: nibble i ← AWQ nibble REV[i], REV =
/// [0,4,1,5,2,6,3,7] (§5.2 step 1). 0x76543210 → 0x73625140.
uint32_t awqOrderToNatural(uint32_t awqWord);
/// Inverse of awqOrderToNatural.
uint32_t naturalOrderToAwq(uint32_t naturalWord);

/// One AWQ qweight word → the NPU int4 word (§5.2 steps 1-2). 0x76543210 → 0xfbead9c8.
inline uint32_t awqWordToNpu(uint32_t awqWord) { return awqOrderToNatural(awqWord) ^ kSignFlip; }
/// Inverse of awqWordToNpu.
inline uint32_t npuWordToAwq(uint32_t npuWord) { return naturalOrderToAwq(npuWord ^ kSignFlip); }

/// Signed int4 value of element j (0..7) of an NPU word (two's complement of nibble j, §5.1).
inline int32_t int4At(uint32_t word, int j) {
  int32_t v = int32_t((word >> (4 * j)) & 0xFu);
  return v >= 8 ? v - 16 : v;
}

/// AWQ zero point z (0..15) → NPU antiquant offset 8 − z (§5.2 step 3): (u − 8 + 8 − z)·s = (u −
/// z)·s.
inline float offsetFromZero(uint32_t z) { return 8.0f - float(z); }
/// Inverse of offsetFromZero: nullopt unless `offset` is an integer in [−7, 8] (then z = 8 −
/// offset).
std::optional<uint32_t> zeroFromOffset(float offset);

/// qweight [rows, N/8] (AWQ order) → NPU weight [rows, N/8]; word-local, so any leading dims
/// (expert stacks) are just more rows.
std::vector<uint32_t> convertWeightWords(std::span<const uint32_t> awqWords);
/// qzeros [rows, N/8] (AWQ order) → offsets [rows, N] = 8 − z in natural column order, as f32
/// (integers in [−7, 8], exact in f16 / bf16).
std::vector<float> zerosToOffsets(std::span<const uint32_t> qzeros);
/// Inverse of zerosToOffsets; the message says which offset is not 8 − z for a 4-bit z.
std::optional<std::string> offsetsToZeros(std::span<const float> offsets,
                                          std::vector<uint32_t> &qzeros);

/// Reference antiquant of one NPU int4 weight to f32 [N, K] (HF orientation):
///   out[n*K + k] = (int4(weight[k][n]) + offset[k/G][n]) * scale[k/G][n]
/// `offset` may be empty (antiquant_offset = None: symmetric). The sum is formed in f32 (exact for
/// integer offsets) and multiplied once, as AscendAntiQuant does (dst = scale * (src + offset)).
void antiquant(std::span<const uint32_t> weight, std::span<const float> scale,
               std::span<const float> offset, int64_t K, int64_t N, int64_t G,
               std::span<float> out);

/// Reference antiquant of one NPU int8 weight [K, N] to f32 [N, K], same formula as antiquant().
void antiquantInt8(std::span<const int8_t> weight, std::span<const float> scale,
                   std::span<const float> offset, int64_t K, int64_t N, int64_t G,
                   std::span<float> out);

/// Signed int4 codes [rows, N] (each in [−8, 7]) → NPU words [rows, N/8] (element 8i+j in nibble j,
/// two's complement; what npu_convert_weight_to_int4pack produces). N % 8 == 0.
std::vector<uint32_t> packInt4(std::span<const int8_t> codes, int64_t rows, int64_t N);
/// Inverse of packInt4.
std::vector<int8_t> unpackInt4(std::span<const uint32_t> words, int64_t rows, int64_t N);

/// Shape relations of !npu_w8: K, N positive, G positive or -1 (= K), K % G == 0 (int8 needs no
/// packing along N).
std::optional<std::string> validateW8(int64_t K, int64_t N, int64_t G);

/// Shape relations of !npu_w4: K, N positive, N % 8 == 0 (8 int4 per int32 along N), G positive
/// or -1 (= K, per-channel), K % G == 0.
std::optional<std::string> validateW4(int64_t K, int64_t N, int64_t G);

} // namespace qlc::npu
