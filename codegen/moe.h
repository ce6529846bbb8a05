// A fused MoE layer on the JIT kernels (`cpu.moe`): router softmax / top-k exactly as the
// reference (runtime/reference_ops.cpp `moe`), token grouping by expert, per-expert fused dequant
// GEMV / GEMM over the routed tokens (w13 = [gate ; up], or separate gate and up), act(gate) * up,
// the down projection, and the weighted combine. Threads split (expert, N-chunk) work items.
#pragma once
#include <cstdint>
#include <vector>

#include "llvm/Support/Error.h"

#include "codegen/jit.h"
#include "codegen/thread_pool.h"

namespace qlc::codegen {

/// One expert-stacked quantized weight: the per-expert kernel specialisation and, for every expert,
/// its parts in spec.partSlots() order (`parts[e * slots + i]`).
struct ExpertWeight {
  KernelSpec spec;
  int64_t experts = 0;
  std::vector<const uint8_t *> parts;
  const uint8_t *const *expert(int64_t e) const {
    return parts.data() + e * int64_t(spec.partSlots().size());
  }
  /// Per-expert part pointers from stacked parts: part i of expert e is base[i] + e * stride[i].
  static ExpertWeight stacked(const KernelSpec &spec, int64_t experts,
                              const std::vector<const uint8_t *> &base,
                              const std::vector<int64_t> &stride);
};

struct MoeConfig {
  int64_t topK = 2;
  bool renormalize = false;
  bool gelu = false; ///< activation: exact gelu instead of silu
};

/// Routing of one token: the top_k experts in order (highest probability first, ties to the lower
/// index) and their combine weights (softmax probability, / the selected sum when renormalizing).
struct Route {
  std::vector<int64_t> experts;
  std::vector<double> weights;
};
/// y [T, H] = moe(x [T, H], logits [T, E]). `w13` is [2I, H] per expert (gate rows [0, I), up rows
/// [I, 2I)) when `up` is null, else the gate [I, H] with `up` [I, H]; `w2` is [H, I].
/// `pool` null = the calling thread only.
llvm::Error runMoe(const ExpertWeight &w13, const ExpertWeight *up, const ExpertWeight &w2,
                   const MoeConfig &cfg, const float *x, const float *logits, int64_t tokens,
                   float *y, ThreadPool *pool, KernelCache &cache = KernelCache::global());

/// The same with the routing given: `expert` / `weight` [tokens * cfg.topK], token-major (slot j of
/// token t at t * topK + j), experts in [0, E) (checked); cfg.renormalize is not used. This is
/// npu.fused_experts after npu.moe_gating_topk: combine weights as given, in slot order.
llvm::Error runMoeRouted(const ExpertWeight &w13, const ExpertWeight *up, const ExpertWeight &w2,
                         const MoeConfig &cfg, const float *x, const std::vector<int64_t> &expert,
                         const std::vector<double> &weight, int64_t tokens, float *y,
                         ThreadPool *pool, KernelCache &cache = KernelCache::global());

} // namespace qlc::codegen
