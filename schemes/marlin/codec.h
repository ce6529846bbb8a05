// Marlin layout codec (FORMATS.md §4): the closed forms that place natural codes [K, N], scales
// [G', N] and zero points [G', N] in the layouts the Marlin kernels read. Pure functions, no LLVM;
// the !marlin weight type, its reference dequantizer and the marlin-permute pass all go through
// this one file, so the layout is stated once.
//
// Layouts (row-major, int32 tensors handled as uint32_t bit containers), b ∈ {4, 8}, pf = 32/b:
//   qweight [K/16, N*16/pf]   one row per 16-row k-tile, 64-column n-tiles consecutive (§4.1)
//   scales  [G', N]           columns permuted within chunks of 64 (grouped) or 32 (single) (§4.5)
//   qzeros  [G', N/pf]        scale_perm + interleave + sequential packing (§4.6)
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace qlc::marlin {

/// The tile the repack kernels require: K % 16, N % 64 (gptq_marlin_repack TORCH_CHECKs, §4.1).
inline constexpr int64_t kTileK = 16;
inline constexpr int64_t kTileN = 64;
/// K % 128 for the linear kernel (GPTQ_MARLIN_MIN_THREAD_K); MoE experts need K % 64 (§4.1).
inline constexpr int64_t kLinearMinK = 128;
inline constexpr int64_t kMoeMinK = 64;

inline int64_t packFactor(int bits) { return 32 / bits; }
/// Columns of qweight: N*16/pf (2N for 4-bit, 4N for 8-bit).
inline int64_t qweightCols(int64_t N, int bits) { return N * kTileK / packFactor(bits); }
/// Rows of scales / qzeros: K/G, or 1 for group = -1.
inline int64_t numGroups(int64_t K, int64_t groupSize) {
  return groupSize == -1 ? 1 : K / groupSize;
}

/// Where one code lives: the flat word index into a row-major tensor, and its bit shift.
struct CodeSlot {
  int64_t word;
  int shift;
};

/// §4.3 closed form: element (k, n) of the (act-order sorted) code matrix in qweight.
CodeSlot weightSlot(int64_t k, int64_t n, int64_t N, int bits);
/// codes [K, N] row-major (each < 2^bits) -> qweight [K/16, N*16/pf].
std::vector<uint32_t> packWeights(std::span<const uint8_t> codes, int64_t K, int64_t N, int bits);
/// The code of (k, n) read back from qweight.
uint32_t weightCode(const uint32_t *qweight, int64_t N, int64_t k, int64_t n, int bits);

/// marlin_permute_scales' choice (§4.5): the grouped 64-perm iff `groupSize < sizeK` and not -1,
/// else the single 32-perm. `sizeK` must be the K of the weight whose scales these are (H for
/// w13 / gate / up, I for w2 / down): the MoE bug of §4.8 is passing another weight's K here.
bool groupedScalePerm(int64_t groupSize, int64_t sizeK);
/// Position of logical column n in a permuted scales row (§4.5 closed forms).
int64_t scaleColumn(int64_t n, bool grouped);
/// Permutes scales [rows, N] (elements of `elemBytes` bytes, any float type: a pure move).
std::vector<uint8_t> permuteScales(std::span<const uint8_t> scales, int64_t rows, int64_t N,
                                   int elemBytes, int64_t groupSize, int64_t sizeK);

/// §4.6 closed form: column n of a zero-point row -> word within the row [N/pf], bit shift.
CodeSlot zeroSlot(int64_t n, int bits);
/// zeros [rows, N] row-major (unsigned codes < 2^bits) -> qzeros [rows, N/pf].
std::vector<uint32_t> packZeros(std::span<const uint8_t> zeros, int64_t rows, int64_t N, int bits);
uint32_t zeroCode(const uint32_t *qzeros, int64_t N, int64_t row, int64_t n, int bits);

/// Act-order (§2.4, §4.4): perm = stable argsort(g_idx); repacked row k holds original row perm[k]
/// and the sorted g_idx is g_idx[perm[k]].
std::vector<int32_t> actOrderPerm(std::span<const int32_t> gIdx);

/// Is [N, K] with this group size and width something the Marlin kernels take? `expertStack`
/// selects the MoE rule (K % max(64, G)) instead of the linear one (K % 128). Returns nullopt or a
/// message that names the dim and says what would fit ("N = 100 is not a multiple of 64 (Marlin
/// tiles N by 64; pad N to 128)").
std::optional<std::string> checkShape(int64_t N, int64_t K, int64_t groupSize, int bits,
                                      bool expertStack);

} // namespace qlc::marlin
