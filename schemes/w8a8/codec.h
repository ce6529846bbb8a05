// vllm-ascend W8A8_DYNAMIC codec (FORMATS.md §5.4): int8 weights [N, K] with per-channel scales,
// per-token dynamic int8 activations, and an exact-int32 reference matmul.
//
// Checkpoint tensors: weight [N, K] int8, weight_scale [N, 1], weight_offset [N, 1] (params dtype;
// passed here as decoded f32). Dequant output is f32 [N, K].
//
// weight_offset: §5.4 says it is loaded but unused by the dynamic matmul (npu_quant_matmul gets
// only weight_scale), i.e. the deployed model computes with symmetric weights. The reference
// therefore ignores the offset too — applying (w − offset) would describe a model that no
// runtime executes. offsetWarning() lets a verifier flag checkpoints whose offsets are not 0.
#pragma once

#include <climits>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace qlc::w8a8 {

/// Largest K for which Σ_k x_q·w cannot overflow int32: |x_q| <= 127 (clamped) and |w| <= 128
/// (any int8 a checkpoint may hold), so K·127·128 <= INT32_MAX.
inline constexpr int64_t kMaxExactK = INT32_MAX / (127 * 128);

/// K, N positive and K <= kMaxExactK.
std::optional<std::string> validate(int64_t K, int64_t N);
/// weight [N, K], weight_scale [N, 1], weight_offset [N, 1].
std::optional<std::string> validateShapes(std::span<const int64_t> weightShape,
                                          std::span<const int64_t> scaleShape,
                                          std::span<const int64_t> offsetShape, int64_t K,
                                          int64_t N);
/// Message if some offset is non-zero (the runtime would silently ignore it).
std::optional<std::string> offsetWarning(std::span<const float> weightOffset);

/// out[n*K + k] = w[n][k] · scale[n]   (offset ignored, see above).
void dequantize(std::span<const int8_t> weight, std::span<const float> scale, int64_t K, int64_t N,
                std::span<float> out);

struct TokenQuant {
  std::vector<int8_t> q;    ///< [M, K]
  std::vector<float> scale; ///< [M]
};

/// npu_dynamic_quant reference, per token t: scale_t = max_k |x[t,k]| / 127,
/// q = clamp(round(x / scale_t), −127, 127). Rounding is half-to-even: it is what torch.round and
/// vLLM's int8 kernels (nearbyint) do, the NPU's own tie rule is undocumented, and ties have
/// measure zero on real activations. An all-zero token gets scale 0 and codes 0 (instead of 0/0).
TokenQuant quantizePerToken(std::span<const float> x, int64_t M, int64_t K);

/// acc[m*N + n] = Σ_k xq[m,k] · w[n,k] in int32 — exact when K <= kMaxExactK.
std::vector<int32_t> accumulate(std::span<const int8_t> xq, std::span<const int8_t> weight,
                                int64_t M, int64_t K, int64_t N);

/// y[m*N + n] = s_tok[m] · weight_scale[n] · acc[m,n] (+ bias[n]); the product is formed in double
/// and rounded to f32 once, so the only errors are that rounding (and f32 inputs themselves).
std::vector<float> matmul(std::span<const int8_t> xq, std::span<const float> tokenScale,
                          std::span<const int8_t> weight, std::span<const float> weightScale,
                          std::span<const float> bias, int64_t M, int64_t K, int64_t N);

struct Checkpoint {
  std::vector<int8_t> weight;       ///< [N, K]
  std::vector<float> weightScale;   ///< [N] (stored as [N, 1])
  std::vector<float> weightOffset;  ///< [N] zeros
};

/// Symmetric per-channel: scale[n] = max|w[n,:]| / 127 (1 if the row is all zero),
/// w_q = clamp(round(w / scale), −127, 127), offset 0. Scales are kept in f32.
Checkpoint quantize(std::span<const float> w, int64_t K, int64_t N);

} // namespace qlc::w8a8
