// AWQ GEMM checkpoint codec (FORMATS.md §1): interleaved packing along N, (q − z)·s dequant and
// AutoAWQ's asymmetric min/max quantizer. Pure functions; callers check shapes with validate*().
//
// Layouts (row-major, int32 tensors handled as uint32_t bit containers):
//   qweight [K, N*b/32]   qzeros [K/G, N*b/32]   scales [K/G, N] fp16 bits
// Outputs of dequantize() are f32 in HF orientation [N, K].
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace qlc::awq {

/// 4-bit: nibble i of a word holds column 8c + kOrder4[i] (AutoAWQ AWQ_ORDER, §1.2).
inline constexpr std::array<int, 8> kOrder4 = {0, 2, 4, 6, 1, 3, 5, 7};
/// 4-bit: column 8c + j sits in nibble kReverse4[j] (AWQ_REVERSE_ORDER, §1.2).
inline constexpr std::array<int, 8> kReverse4 = {0, 4, 1, 5, 2, 6, 3, 7};
/// 8-bit (awq_marlin input): byte i holds column 4c + kOrder8[i]; self-inverse (§1.2).
inline constexpr std::array<int, 4> kOrder8 = {0, 2, 1, 3};

/// Shape relations of one AWQ Linear: bits ∈ {4, 8} (8 only for awq_marlin), N % (32/bits) == 0,
/// G ∈ {-1} ∪ positive, K % G == 0 (vLLM awq.py create_weights, §1.1).
std::optional<std::string> validate(int64_t K, int64_t N, int64_t G, int bits = 4);

/// Checks the three tensor shapes against K, N, G (e.g. "scales has shape [3, 64], expected ...").
std::optional<std::string> validateShapes(std::span<const int64_t> qweightShape,
                                          std::span<const int64_t> qzerosShape,
                                          std::span<const int64_t> scalesShape, int64_t K,
                                          int64_t N, int64_t G, int bits = 4);

/// Code of column n in row `row` of an AWQ-packed [rows, N*bits/32] matrix (qweight: row = k;
/// qzeros: row = group). Reading rule of §1.2: (w[row][n/8] >> 4*REV[n%8]) & 0xF.
uint32_t unpackCode(const uint32_t *packed, int64_t N, int64_t row, int64_t n, int bits = 4);

/// codes [rows, N] (each < 2^bits) -> packed [rows, N*bits/32] with the AWQ interleave.
std::vector<uint32_t> packAwq(std::span<const uint8_t> codes, int64_t rows, int64_t N,
                              int bits = 4);
/// Inverse of packAwq.
std::vector<uint8_t> unpackAwq(std::span<const uint32_t> packed, int64_t rows, int64_t N,
                               int bits = 4);

/// out[n*K + k] = (q[k][n] − z[k/G][n]) · scales[k/G][n]  (§1.3). The product of a small integer
/// and an fp16 value is exact in f32; fp16 kernels (Triton awq_dequantize) round it to fp16.
void dequantize(std::span<const uint32_t> qweight, std::span<const uint32_t> qzeros,
                std::span<const uint16_t> scales, int64_t K, int64_t N, int64_t G,
                std::span<float> out, int bits = 4);

struct Checkpoint {
  std::vector<uint32_t> qweight; ///< [K, N*bits/32]
  std::vector<uint32_t> qzeros;  ///< [K/G, N*bits/32]
  std::vector<uint16_t> scales;  ///< [K/G, N] fp16 bits
};

/// AutoAWQ pseudo_quantize_tensor (zero_point=True, §1.3) over w [N, K] row-major, per
/// (group, column):  s = fp16(clamp(max − min, 1e-5) / maxq),  z = clamp(−round(min/s), 0, maxq),
/// q = clamp(round(w/s) + z, 0, maxq), maxq = 2^bits − 1, round = half-to-even (torch.round).
/// The codes are computed with the fp16-rounded scale, so they agree with the stored scale.
/// Like upstream, min/max are NOT widened to include 0: a group whose values are all of one
/// sign saturates (z clamps to 0 or maxq) — faithful to AutoAWQ, and tested as such.
Checkpoint quantize(std::span<const float> w, int64_t K, int64_t N, int64_t G, int bits = 4);

} // namespace qlc::awq
