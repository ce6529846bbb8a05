// GPTQ checkpoint codec (FORMATS.md §2): 2/3/4/8-bit sequential packing (qweight along K, qzeros
// along N), v1 "+1" zero convention vs v2, sym/asym, g_idx (desc_act), and a round-to-nearest
// quantizer using AutoGPTQ's find_params grid. Pure functions; callers check shapes first.
//
// Layouts (row-major; int32 tensors handled as uint32_t bit containers), b = bits:
//   qweight [K*b/32, N]   qzeros [ceil(K/G), N*b/32]   scales [ceil(K/G), N] fp16   g_idx [K] int32
// (for b = 3 these are [K/32*3, N] and [.., N/32*3], §2.1). Dequant output is f32 [N, K].
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace qlc::gptq {

/// v1: stored zero = real zero − 1 (AutoGPTQ packer); v2 (GPTQModel "gptq_v2"): stored == real.
enum class Format { V1, V2 };

struct Config {
  int bits = 4;             ///< 2, 3, 4 or 8
  int64_t groupSize = 128;  ///< -1 = one group (G = K)
  bool sym = true;
  Format format = Format::V1;
};

/// ceil(K/G): AutoGPTQ allocates ceil groups; vLLM additionally requires K % G == 0 (checked by
/// validate(..., requireKMultipleOfG = true)).
int64_t numGroups(int64_t K, int64_t G);
/// Rows of qweight: K*b/32 (K/32*3 for 3-bit).
int64_t qweightRows(int64_t K, int bits);
/// Columns of qzeros: N*b/32 (N/32*3 for 3-bit).
int64_t qzerosCols(int64_t N, int bits);

/// Shape relations: bits ∈ {2,3,4,8}; K and N multiples of 32/b (of 32 for 3-bit) so that packing
/// along K (qweight) and N (qzeros) is exact; G positive or -1; optionally K % G == 0 (vLLM).
std::optional<std::string> validate(int64_t K, int64_t N, const Config &cfg,
                                    bool requireKMultipleOfG = false);

/// Checks qweight / qzeros / scales / g_idx shapes (g_idx may be omitted: pass an empty span).
std::optional<std::string> validateShapes(std::span<const int64_t> qweightShape,
                                          std::span<const int64_t> qzerosShape,
                                          std::span<const int64_t> scalesShape,
                                          std::span<const int64_t> gIdxShape, int64_t K, int64_t N,
                                          const Config &cfg);

/// Every g_idx entry must name an existing group: 0 <= g_idx[k] < numGroups.
std::optional<std::string> validateGIdx(std::span<const int32_t> gIdx, int64_t K,
                                        int64_t numGroups);

/// Code q[k][n] of qweight (§2.2: (qweight[k/pf][n] >> b*(k%pf)) & mask; 3-bit straddles words).
uint32_t weightCode(const uint32_t *qweight, int64_t N, int64_t k, int64_t n, int bits);
/// Stored (not +1-adjusted) zero code of group g, column n (qzeros packed along N).
uint32_t zeroCode(const uint32_t *qzeros, int64_t N, int64_t g, int64_t n, int bits);

/// codes [K, N] -> qweight [K*b/32, N] (packed along K).
std::vector<uint32_t> packAlongK(std::span<const uint8_t> codes, int64_t K, int64_t N, int bits);
std::vector<uint8_t> unpackAlongK(std::span<const uint32_t> qweight, int64_t K, int64_t N,
                                  int bits);
/// codes [R, N] -> [R, N*b/32] (packed along N, as qzeros).
std::vector<uint32_t> packAlongN(std::span<const uint8_t> codes, int64_t R, int64_t N, int bits);
std::vector<uint8_t> unpackAlongN(std::span<const uint32_t> packed, int64_t R, int64_t N,
                                  int bits);

/// g_idx[k] = k / G (no act-order, or act-order with static_groups, §2.4).
std::vector<int32_t> sequentialGIdx(int64_t K, int64_t G);
/// Act-order g_idx: perm[i] is the input row processed i-th; groups are cut in that order, so
/// g_idx[perm[i]] = i / G (§2.4: g_idx[k] = position(k) / G, rows stay in original order).
std::vector<int32_t> actOrderGIdx(std::span<const int32_t> perm, int64_t G);

/// W[n][k] = scales[g][n] * (q[k][n] − (zq[g][n] + (v1 ? 1 : 0))), g = g_idx[k] (§2.3). An empty
/// gIdx means g = k / G. Integer × fp16 is exact in f32.
void dequantize(std::span<const uint32_t> qweight, std::span<const uint32_t> qzeros,
                std::span<const uint16_t> scales, std::span<const int32_t> gIdx, int64_t K,
                int64_t N, const Config &cfg, std::span<float> out);

struct Checkpoint {
  std::vector<uint32_t> qweight; ///< [K*b/32, N]
  std::vector<uint32_t> qzeros;  ///< [ceil(K/G), N*b/32], stored convention of cfg.format
  std::vector<uint16_t> scales;  ///< [ceil(K/G), N] fp16 bits
  std::vector<int32_t> gIdx;     ///< [K]
};

/// Round-to-nearest with AutoGPTQ's find_params grid (§2.3, quantizer.py) over w [N, K]; the
/// Hessian error feedback of the GPTQ algorithm needs calibration data and is out of scope.
/// Per (group, column): xmin = min(min w, 0), xmax = max(max w, 0) (find_params widens to 0);
///   sym : xmax = max(|xmin|, xmax), xmin = −xmax, z = (maxq+1)/2;
///   asym: z = round(−xmin / s);
///   both: xmin == xmax == 0 → [−1, 1];  s = fp16((xmax − xmin)/maxq);  q = clamp(round(w/s)+z, 0, maxq).
/// Deviations, both deliberate: (1) sym always mirrors xmin (upstream leaves xmin = 0 for an
/// all-non-negative group and then clips its top half); (2) v1 cannot store a real zero of 0
/// (it would be packed as −1 and corrupt the neighbouring codes, §2.3), so in v1 asym mode a
/// group whose zero rounds to 0 is refitted with z = 1 and s = xmax/(maxq − 1): every value stays
/// on the grid, so the |error| <= s/2 bound still holds, at the cost of one level.
/// `perm` (optional, a permutation of 0..K-1) produces an act-order checkpoint: groups are cut in
/// permuted order and g_idx = actOrderGIdx(perm); `staticGroups` keeps g_idx[k] = k/G (the
/// permutation then only changes the processing order, which RTN ignores).
Checkpoint quantize(std::span<const float> w, int64_t K, int64_t N, const Config &cfg,
                    std::span<const int32_t> perm = {}, bool staticGroups = false);

} // namespace qlc::gptq
