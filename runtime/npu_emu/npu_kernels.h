// The npu-emu device's kernels: the Ascend operators of FORMATS.md §5.1 written out in plain C++
// on the layouts npu-layout-rewrite produces (f32 arithmetic, the operators' roundings). They read
// raw device bytes and know nothing of the IR; npu_emu_executor.cpp checks shapes and layouts
// before it calls them. Every kernel returns the floating-point operations it performed (a matmul
// counts 2·M·N·K) for the op trace.
#pragma once
#include <cstdint>
#include <vector>

#include "ir/types.h"

namespace qlc::npu_emu {

/// Decodes `count` values of a float element type (f16 / bf16 / f32 bytes) to f32.
void decodeFloats(const uint8_t *bytes, ElemKind elem, int64_t count, float *out);
/// Rounds `v` to `elem`'s precision in place (f16 / bf16 round to nearest even; f32 unchanged):
/// what storing an intermediate in that type does.
void roundTo(ElemKind elem, float *v, int64_t count);

/// How the codes of an antiquant weight are stored (FORMATS.md §5.1).
enum class CodeLayout {
  Int4InInt32, ///< [K, N/8] int32, element 8i+j in bits [4j, 4j+3], two's complement
  Int8,        ///< [K, N] int8
};

/// A weight of npu_weight_quant_batchmatmul / npu_grouped_matmul on the device, `experts` stacked
/// ([E][K, ...] codes, [E][K/G, N] parameters):
///   W_e[k][n] = (code_e[k][n] + antiquant_offset_e[k/G][n]) * antiquant_scale_e[k/G][n]
/// The offset is ADDED (aclnnWeightQuantBatchMatmulV2); without one the codes are symmetric.
struct AntiquantWeight {
  CodeLayout layout = CodeLayout::Int4InInt32;
  int64_t experts = 1, k = 0, n = 0, group = 0; ///< group = k for per-channel
  const uint8_t *codes = nullptr;
  ElemKind paramElem = ElemKind::F16;
  const uint8_t *scale = nullptr;
  const uint8_t *offset = nullptr; ///< null: antiquant_offset = None

  /// Row k of expert e antiquantized to f32: out[n] = W_e[k][n], n in [0, N).
  void row(int64_t e, int64_t kk, float *out) const;
};

/// A dense weight in HF orientation [E][N, K] (what lower-npu's pre-dequantization leaves for core
/// linear / moe), read as the matmul's [K, N] right operand.
struct DenseWeight {
  int64_t experts = 1, n = 0, k = 0;
  ElemKind elem = ElemKind::F16;
  const uint8_t *data = nullptr;

  void row(int64_t e, int64_t kk, float *out) const;
};

/// An unfused expert pair gate [E][I, H] and up [E][I, H] read as one [gate ; up] weight with
/// N = 2I (core moe with three weights).
struct GateUpWeight {
  GateUpWeight(DenseWeight g, DenseWeight u)
      : gate(g), up(u), experts(g.experts), n(g.n + u.n), k(g.k) {}
  DenseWeight gate, up;
  int64_t experts, n, k;
  void row(int64_t e, int64_t kk, float *out) const;
};

/// y[r][n] = Σ_k x[r][k] · W_e[k][n] (+ bias[n]) for `rows` rows: the cube unit's matmul. Each
/// antiquantized weight row is rounded to `computeElem` first (f16 / bf16 activations make the
/// antiquant output f16 / bf16, the matmul's operand type); products are accumulated in f32 in k
/// order. `bias` may be null.
template <typename Weight>
uint64_t matmul(const float *x, int64_t rows, const Weight &w, int64_t expert, ElemKind computeElem,
                const float *bias, float *y);

/// npu_weight_quant_batchmatmul: y = x @ ANTIQUANT(weight) (+ bias), x [rows, K], y [rows, N].
uint64_t weightQuantBatchMatmul(const float *x, int64_t rows, const AntiquantWeight &w,
                                const float *bias, ElemKind xElem, float *y);

/// MoE routing before the expert kernel (FORMATS.md §5.3): softmax over the E experts in f32, the
/// top_k largest (ties: the lower expert first), optionally renormalized over the k chosen.
/// weights / ids are [T, k].
uint64_t gatingTopK(const float *logits, int64_t tokens, int64_t experts, int64_t topK,
                    bool renormalize, float *weights, int64_t *ids);

/// npu_moe_init_routing: the T·k expanded rows sorted by expert (stable in token-major order
/// t·k+j), where each (t, j) went, and the cumulative expert_tokens (group_list_type = 0).
struct ExpandedRows {
  std::vector<int64_t> sourceToken; ///< sorted position -> token t
  std::vector<int64_t> srcToDst;    ///< expanded_src_to_dst_row: j·T + t -> sorted position
  std::vector<int64_t> groupEnd;    ///< [E]: rows [groupEnd[e-1], groupEnd[e]) are expert e's
};
/// `ids` [T, k] must all be in [0, experts) (the caller checks).
ExpandedRows initRouting(const int64_t *ids, int64_t tokens, int64_t topK, int64_t experts);

enum class Activation { Silu, Gelu };

/// Working memory of fusedExperts in bytes (expanded input, gmm1, activation, gmm2; f32 rows), for
/// the device memory accounting.
uint64_t fusedExpertsWorkspaceBytes(int64_t tokens, int64_t topK, int64_t hidden,
                                    int64_t intermediate);

/// sglang npu_fused_experts: init_routing → grouped matmul with w13 ([E][H, 2I]) → swiglu
/// (act(first half) · second half) → grouped matmul with w2 ([E][I, H]) → finalize_routing
/// (y[t] = Σ_j topk_weights[t][j] · gmm2[dst(j·T + t)]). Intermediates are stored in `computeElem`
/// (the activation dtype on the device). x [T, H], y [T, H].
template <typename W13, typename W2>
uint64_t fusedExperts(const float *x, int64_t tokens, int64_t hidden, const float *topkWeights,
                      const int64_t *topkIds, int64_t topK, const W13 &w13, const W2 &w2,
                      int64_t intermediate, Activation act, ElemKind computeElem, float *y);

/// npu_dynamic_quant: per row scale = max|x| / 127 (f32), q = clamp(round-half-even(x / scale),
/// −127, 127); an all-zero row gets scale 0 and zero codes. x [rows, K].
uint64_t dynamicQuant(const float *x, int64_t rows, int64_t k, int8_t *q, float *scale);

/// npu_quant_matmul: acc[m][n] = Σ_k q[m][k] · w[k][n] in int32, y = acc · weight_scale[n] ·
/// pertoken_scale[m] in f32 (+ bias[n]). q [rows, K] int8, w [K, N] int8.
uint64_t quantMatmul(const int8_t *q, const float *pertokenScale, int64_t rows, int64_t k,
                     const int8_t *w, const float *weightScale, int64_t n, const float *bias,
                     float *y);

/// RmsNorm: y = x / sqrt(mean(x²) + eps) · w, f32, x [rows, D].
uint64_t rmsNorm(const float *x, int64_t rows, int64_t d, const float *w, float eps, float *y);

} // namespace qlc::npu_emu
