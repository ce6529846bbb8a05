#include "runtime/moe_routing.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace qlc {

MoeRoutes routeTopK(const float *logits, int64_t tokens, int64_t experts, int64_t topK,
                    bool renormalize) {
  MoeRoutes r;
  r.topK = topK;
  r.expert.assign(size_t(tokens * topK), 0);
  r.weight.assign(size_t(tokens * topK), 0.0);
  std::vector<double> probs(static_cast<size_t>(experts));
  std::vector<int64_t> order(static_cast<size_t>(experts));
  for (int64_t t = 0; t < tokens; ++t) {
    const float *l = logits + t * experts;
    // Subtracting the max keeps exp() finite; f64 keeps near-ties apart.
    double mx = *std::max_element(l, l + experts), sum = 0;
    for (int64_t j = 0; j < experts; ++j)
      sum += probs[size_t(j)] = std::exp(double(l[j]) - mx);
    for (double &p : probs)
      p /= sum;
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return probs[size_t(a)] > probs[size_t(b)]; });
    double selected = 0;
    for (int64_t j = 0; j < topK; ++j)
      selected += probs[size_t(order[size_t(j)])];
    for (int64_t j = 0; j < topK; ++j) {
      int64_t e = order[size_t(j)];
      r.expert[size_t(t * topK + j)] = e;
      r.weight[size_t(t * topK + j)] = probs[size_t(e)] / (renormalize ? selected : 1.0);
    }
  }
  return r;
}

} // namespace qlc
