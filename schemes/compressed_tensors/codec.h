// compressed-tensors `pack-quantized` (WNA16) codec (FORMATS.md §3): signed codes stored with a
// +2^(b−1) offset, packed sequentially along K (weight) or N (zero point), group / channel
// strategy, symmetric and asymmetric, optional weight_g_idx (actorder "group").
//
// Layouts (row-major; int32 tensors handled as uint32_t bit containers), b ∈ {4, 8}, pf = 32/b:
//   weight_packed [N, ceil(K/pf)]   weight_scale [N, groups]   weight_zero_point [ceil(N/pf), groups]
//   weight_g_idx [K] int32          weight_shape [2] = {N, K}
// groups = K/G (group strategy) or 1 (channel). Dequant output is f32 [N, K].
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace qlc::ct {

enum class Strategy { Group, Channel };

/// Dtype of weight_scale in the checkpoint: the calibrated model dtype (§3.3, unconfirmed which).
enum class ScaleType { F16, BF16 };

/// Divisor of the symmetric scale. FORMATS.md §3.1 gives max|w| / (2^b/2) (/8 for 4-bit); the
/// compressed-tensors helpers.py snapshots we could read (56bac76, 024cea3) compute
/// max|w| / ((q_max − q_min)/2) = /7.5. Both are offered; the fact sheet's is the default.
enum class SymDivisor { HalfPow2, HalfRange };

struct Config {
  int bits = 4; ///< 4 or 8
  Strategy strategy = Strategy::Group;
  int64_t groupSize = 128; ///< group strategy only; -1 = one group
  bool symmetric = true;
  ScaleType scaleType = ScaleType::F16;
  SymDivisor symDivisor = SymDivisor::HalfPow2;
};

/// Number of scale columns: K/G for group strategy, 1 for channel.
int64_t numGroups(int64_t K, const Config &cfg);
/// Group of input column k without g_idx: k / G (group), 0 (channel).
int64_t groupOf(int64_t k, int64_t K, const Config &cfg);

/// Shape relations: bits ∈ {4, 8}; group strategy needs K % G == 0. K and N need not be multiples
/// of pf (rows are zero-padded, §3.2).
std::optional<std::string> validate(int64_t K, int64_t N, const Config &cfg);
/// Checks the tensor shapes; pass an empty span for absent tensors (zero point when symmetric,
/// g_idx without actorder "group").
std::optional<std::string> validateShapes(std::span<const int64_t> weightPackedShape,
                                          std::span<const int64_t> weightScaleShape,
                                          std::span<const int64_t> zeroPointShape,
                                          std::span<const int64_t> gIdxShape, int64_t K, int64_t N,
                                          const Config &cfg);
/// weight_shape must be [N, K] (int64 as written, int32 also accepted by the caller).
std::optional<std::string> validateWeightShape(std::span<const int64_t> weightShape, int64_t K,
                                               int64_t N);
/// 0 <= g_idx[k] < numGroups for every k.
std::optional<std::string> validateGIdx(std::span<const int32_t> gIdx, int64_t K,
                                        int64_t numGroups);

/// Signed code -> stored unsigned code: u = q + 2^(b−1) (§3.2 step 1), and back.
uint32_t toStored(int32_t q, int bits);
int32_t fromStored(uint32_t u, int bits);

/// Signed codes [R, C] -> [R, ceil(C/pf)], packed along dim 1 (weight_packed), zero-padded.
std::vector<uint32_t> packRows(std::span<const int8_t> q, int64_t R, int64_t C, int bits);
std::vector<int8_t> unpackRows(std::span<const uint32_t> packed, int64_t R, int64_t C, int bits);
/// Signed codes [R, C] -> [ceil(R/pf), C], packed along dim 0 (weight_zero_point), zero-padded.
std::vector<uint32_t> packCols(std::span<const int8_t> q, int64_t R, int64_t C, int bits);
std::vector<int8_t> unpackCols(std::span<const uint32_t> packed, int64_t R, int64_t C, int bits);

/// Stored code u[n][k] of weight_packed and uz[n][g] of weight_zero_point (unsigned, §3.3).
uint32_t weightStored(const uint32_t *weightPacked, int64_t K, int64_t n, int64_t k, int bits);
uint32_t zeroStored(const uint32_t *zeroPoint, int64_t groups, int64_t n, int64_t g, int bits);

/// weight_scale bits (fp16 / bf16) -> f32.
std::vector<float> decodeScales(std::span<const uint16_t> bits, ScaleType type);

/// §3.3: sym W[n][k] = (u − 2^(b−1))·s[n][g];  asym W[n][k] = (u − uz[n][g])·s[n][g],
/// g = g_idx[k] if gIdx is non-empty else groupOf(k). `zeroPoint` empty ⇔ symmetric.
/// Scales are given decoded (any checkpoint dtype); integer × 16-bit float is exact in f32.
void dequantize(std::span<const uint32_t> weightPacked, std::span<const float> scales,
                std::span<const uint32_t> zeroPoint, std::span<const int32_t> gIdx, int64_t K,
                int64_t N, const Config &cfg, std::span<float> out);

struct Checkpoint {
  std::vector<uint32_t> weightPacked;    ///< [N, ceil(K/pf)]
  std::vector<uint16_t> weightScale;     ///< [N, groups], cfg.scaleType bits
  std::vector<uint32_t> weightZeroPoint; ///< [ceil(N/pf), groups]; empty when symmetric
  std::vector<int32_t> weightGIdx;       ///< [K]; empty unless a permutation was given
  std::vector<int64_t> weightShape;      ///< {N, K}
};

/// §3.1 over w [N, K] row-major, per (row n, group): min/max widened to include 0, then
///   sym : s = max(|min|, |max|) / D  (D = 2^b/2 or (2^b−1)/2, cfg.symDivisor), q = clamp(round(w/s), qmin, qmax)
///   asym: s = (max − min)/(2^b − 1),  zp = round(clamp(qmin − min/s, qmin, qmax)),
///         q = clamp(round(w/s + zp), qmin, qmax)
/// with s clamped to >= f32 eps (upstream), rounded to cfg.scaleType before the codes are
/// computed (so codes match the stored scale), round = half-to-even (torch.round).
/// `perm` (optional): actorder "group" — groups are cut in permuted order and weight_g_idx[perm[i]]
/// = i / G is emitted (same convention as GPTQ §2.4).
Checkpoint quantize(std::span<const float> w, int64_t K, int64_t N, const Config &cfg,
                    std::span<const int32_t> perm = {});

} // namespace qlc::ct
