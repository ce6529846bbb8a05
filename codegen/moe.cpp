#include "codegen/moe.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>

#include "codegen/kernel_emitter.h"
#include "runtime/moe_routing.h"

namespace qlc::codegen {
namespace {

llvm::Error fail(const llvm::Twine &msg) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), msg);
}

// The reference's activations (runtime/reference_ops.cpp), in f64.
double silu(double v) { return v / (1.0 + std::exp(-v)); }
double geluExact(double v) { return 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0))); }

/// Uninitialised f32 buffer (the phases write every element they later read).
std::unique_ptr<float[]> buffer(int64_t n) { return std::unique_ptr<float[]>(new float[size_t(std::max<int64_t>(n, 1))]); }

/// One unit of parallel work: rows [nb, ne) of one expert's matrix.
struct Item {
  const ExpertWeight *w;
  int64_t expert;
  int64_t nb, ne;
  const CompiledKernel *kernel;
  double cost;
};

int64_t tileAlign(KernelSpec s, int64_t m) {
  s.mclass = mClassFor(m);
  return s.threadAlign();
}

} // namespace

ExpertWeight ExpertWeight::stacked(const KernelSpec &spec, int64_t experts,
                                   const std::vector<const uint8_t *> &base,
                                   const std::vector<int64_t> &stride) {
  ExpertWeight w;
  w.spec = spec;
  w.experts = experts;
  for (int64_t e = 0; e < experts; ++e)
    for (size_t i = 0; i < base.size(); ++i)
      w.parts.push_back(base[i] ? base[i] + e * stride[i] : nullptr);
  return w;
}

/// Checks the stacks (shared by both entry points).
static llvm::Error checkMoe(const ExpertWeight &w13, const ExpertWeight *up, const ExpertWeight &w2) {
  const int64_t E = w13.experts;
  const bool fused = up == nullptr;
  const int64_t H = w13.spec.k, I = w2.spec.k, N13 = w13.spec.n;
  if (E <= 0 || w2.experts != E || (up && up->experts != E))
    return fail("qlc moe: the expert stacks differ in size");
  if (w2.spec.n != H || (fused ? N13 != 2 * I : N13 != I || up->spec.n != I || up->spec.k != H))
    return fail("qlc moe: w13 [" + llvm::Twine(N13) + ", " + llvm::Twine(H) + "] and w2 [" +
                llvm::Twine(w2.spec.n) + ", " + llvm::Twine(I) + "] do not form an MoE layer");
  return llvm::Error::success();
}

llvm::Error runMoe(const ExpertWeight &w13, const ExpertWeight *up, const ExpertWeight &w2,
                   const MoeConfig &cfg, const float *x, const float *logits, int64_t tokens,
                   float *y, ThreadPool *pool, KernelCache &cache) {
  if (llvm::Error e = checkMoe(w13, up, w2))
    return e;
  if (cfg.topK < 1 || cfg.topK > w13.experts)
    return fail("qlc moe: top_k = " + llvm::Twine(cfg.topK) + " is not in [1, " +
                llvm::Twine(w13.experts) + "]");
  if (tokens <= 0)
    return llvm::Error::success();
  MoeRoutes routes = routeTopK(logits, tokens, w13.experts, cfg.topK, cfg.renormalize);
  return runMoeRouted(w13, up, w2, cfg, x, routes.expert, routes.weight, tokens, y, pool, cache);
}

llvm::Error runMoeRouted(const ExpertWeight &w13, const ExpertWeight *up, const ExpertWeight &w2,
                         const MoeConfig &cfg, const float *x, const std::vector<int64_t> &expertOf,
                         const std::vector<double> &weightOf, int64_t tokens, float *y,
                         ThreadPool *pool, KernelCache &cache) {
  const int64_t E = w13.experts, T = tokens, K = cfg.topK;
  const bool fused = up == nullptr;
  const int64_t H = w13.spec.k, I = w2.spec.k, N13 = w13.spec.n;
  if (llvm::Error e = checkMoe(w13, up, w2))
    return e;
  if (T <= 0)
    return llvm::Error::success();
  if (K <= 0) { // no routed slots (a [T, 0] routing): every output is the empty sum
    std::fill_n(y, T * H, 0.0f);
    return llvm::Error::success();
  }
  const int64_t P = T * K;
  if (int64_t(expertOf.size()) != P || int64_t(weightOf.size()) != P)
    return fail("qlc moe: " + llvm::Twine(expertOf.size()) + " routed experts for " +
                llvm::Twine(T) + " tokens x top_k " + llvm::Twine(K));
  for (int64_t i = 0; i < P; ++i)
    if (expertOf[size_t(i)] < 0 || expertOf[size_t(i)] >= E)
      return fail("qlc moe: token " + llvm::Twine(i / K) + " slot " + llvm::Twine(i % K) +
                  " is routed to expert " + llvm::Twine(expertOf[size_t(i)]) +
                  ", not in [0, " + llvm::Twine(E) + ")");

  // 1. Grouping: the (token, slot) pairs sorted by expert (the routing is the caller's).
  std::vector<int64_t> count(static_cast<size_t>(E), 0), offset(static_cast<size_t>(E) + 1, 0);
  for (int64_t e : expertOf)
    ++count[size_t(e)];
  for (int64_t e = 0; e < E; ++e)
    offset[size_t(e) + 1] = offset[size_t(e)] + count[size_t(e)];
  std::vector<int64_t> pairTok(static_cast<size_t>(P)), pairOf(static_cast<size_t>(P));
  {
    std::vector<int64_t> fill(offset.begin(), offset.end() - 1);
    for (int64_t i = 0; i < P; ++i) { // i = t * K + slot, in token order within each expert
      int64_t p = fill[size_t(expertOf[size_t(i)])]++;
      pairTok[size_t(p)] = i / K;
      pairOf[size_t(i)] = p;
    }
  }

  unsigned threads = pool ? pool->size() : 1;
  // Tiny layers are not worth waking the pool (as runQMatmul).
  if (double(P) * double(H) * double(I) * 3.0 < 65536.0)
    threads = 1;
  auto parallel = [&](int64_t count, const std::function<void(int64_t, unsigned)> &fn) {
    if (threads == 1 || count <= 1)
      for (int64_t i = 0; i < count; ++i)
        fn(i, 0);
    else
      pool->parallelFor(count, fn);
  };

  // Kernels per M-class, compiled before any thread needs them.
  int64_t scratch = 0;
  auto kernelFor = [&](const KernelSpec &base, int64_t m) -> llvm::Expected<const CompiledKernel *> {
    KernelSpec s = base;
    s.mclass = mClassFor(m);
    scratch = std::max(scratch, s.scratchFloats());
    return cache.get(s);
  };
  // Work items of one matrix for every active expert: chunks of N aligned to the kernel's tile,
  // more chunks for experts with more tokens, the costliest first.
  const int64_t target = threads == 1 ? 1 : 4 * int64_t(threads);
  auto addItems = [&](const ExpertWeight &w, std::vector<Item> &items) -> llvm::Error {
    const int64_t n = w.spec.n;
    for (int64_t e = 0; e < E; ++e) {
      int64_t m = count[size_t(e)];
      if (!m)
        continue;
      const int64_t align = tileAlign(w.spec, m), tiles = (n + align - 1) / align;
      auto k = kernelFor(w.spec, m);
      if (!k)
        return k.takeError();
      int64_t chunks = std::clamp<int64_t>((target * m + P - 1) / P, 1, tiles);
      int64_t per = (tiles + chunks - 1) / chunks;
      for (int64_t c = 0; c * per < tiles; ++c) {
        int64_t nb = c * per * align, ne = std::min(n, (c + 1) * per * align);
        items.push_back({&w, e, nb, ne, *k, double(m) * double(ne - nb)});
      }
    }
    return llvm::Error::success();
  };
  auto byCost = [](std::vector<Item> &items) {
    std::stable_sort(items.begin(), items.end(),
                     [](const Item &a, const Item &b) { return a.cost > b.cost; });
  };
  std::vector<Item> upItems, downItems;
  if (llvm::Error e = addItems(w13, upItems))
    return e;
  if (up)
    if (llvm::Error e = addItems(*up, upItems))
      return e;
  if (llvm::Error e = addItems(w2, downItems))
    return e;
  byCost(upItems);
  byCost(downItems);

  auto scratchBuf = [&]() -> float * {
    thread_local std::vector<float> buf;
    if (int64_t(buf.size()) < scratch)
      buf.resize(size_t(scratch));
    return scratch ? buf.data() : nullptr;
  };

  // 2. The routed tokens' rows of x, grouped by expert.
  std::unique_ptr<float[]> xg = buffer(P * H);
  for (int64_t p = 0; p < P; ++p)
    std::copy_n(x + pairTok[size_t(p)] * H, H, xg.get() + p * H);

  // 3. gate / up: h13 [P, N13] (fused: gate columns [0, I), up [I, 2I)); unfused: gate [P, I] in
  //    h13 and up [P, I] in hup.
  std::unique_ptr<float[]> h13 = buffer(P * N13), hup = up ? buffer(P * I) : nullptr;
  parallel(int64_t(upItems.size()), [&](int64_t i, unsigned) {
    const Item &it = upItems[size_t(i)];
    const ExpertWeight &w = *it.w;
    float *out = it.w == up ? hup.get() : h13.get();
    int64_t o = offset[size_t(it.expert)];
    it.kernel->fn(xg.get() + o * H, count[size_t(it.expert)], w.expert(it.expert),
                  out + o * w.spec.n, it.nb, it.ne, scratchBuf());
  });

  // 4. act(gate) * up, rounded to f32 as the reference does.
  std::unique_ptr<float[]> act = buffer(P * I);
  const int64_t rowsPerChunk = std::max<int64_t>(1, 65536 / std::max<int64_t>(I, 1));
  parallel((P + rowsPerChunk - 1) / rowsPerChunk, [&](int64_t c, unsigned) {
    for (int64_t p = c * rowsPerChunk; p < std::min(P, (c + 1) * rowsPerChunk); ++p) {
      const float *g = h13.get() + p * N13;
      const float *u = fused ? g + I : hup.get() + p * I;
      float *a = act.get() + p * I;
      for (int64_t i = 0; i < I; ++i)
        a[i] = float((cfg.gelu ? geluExact(g[i]) : silu(g[i])) * double(u[i]));
    }
  });

  // 5. down: o [P, H].
  std::unique_ptr<float[]> o = buffer(P * H);
  parallel(int64_t(downItems.size()), [&](int64_t i, unsigned) {
    const Item &it = downItems[size_t(i)];
    int64_t off = offset[size_t(it.expert)];
    it.kernel->fn(act.get() + off * I, count[size_t(it.expert)], w2.expert(it.expert),
                  o.get() + off * H, it.nb, it.ne, scratchBuf());
  });

  // 6. Weighted combine in slot order, accumulated in f64 (as the reference).
  const int64_t tokPerChunk = std::max<int64_t>(1, 16384 / std::max<int64_t>(H * K, 1));
  parallel((T + tokPerChunk - 1) / tokPerChunk, [&](int64_t c, unsigned) {
    std::vector<double> acc(static_cast<size_t>(H));
    for (int64_t t = c * tokPerChunk; t < std::min(T, (c + 1) * tokPerChunk); ++t) {
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t s = 0; s < K; ++s) {
        double wt = weightOf[size_t(t * K + s)];
        const float *os = o.get() + pairOf[size_t(t * K + s)] * H;
        for (int64_t i = 0; i < H; ++i)
          acc[size_t(i)] += wt * os[i];
      }
      for (int64_t i = 0; i < H; ++i)
        y[t * H + i] = float(acc[size_t(i)]);
    }
  });
  return llvm::Error::success();
}

} // namespace qlc::codegen
