// MoE routing, written once for every executor (reference, cpu, npu-emu): softmax over all experts
// in f64, the top_k most probable (ties: the lower expert index first, a stable order, as
// torch.topk returns them on the reference devices), weights optionally renormalized over the k
// selected (vLLM fused_topk `renormalize`, FORMATS.md §5.3).
#pragma once
#include <cstdint>
#include <vector>

namespace qlc {

struct MoeRoutes {
  int64_t topK = 0;
  std::vector<int64_t> expert; ///< [tokens * topK], token-major, most probable first
  std::vector<double> weight;  ///< [tokens * topK]
};

/// Routes `tokens` rows of `logits` ([tokens, experts], row-major). Requires 1 <= topK <= experts.
MoeRoutes routeTopK(const float *logits, int64_t tokens, int64_t experts, int64_t topK,
                    bool renormalize);

} // namespace qlc
