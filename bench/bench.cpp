#include "bench/bench.h"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <thread>
#include <unistd.h>

#include "llvm/Support/Error.h"

#include "bench/eigen_ops.h"
#include "codegen/jit.h"
#include "codegen/kernel_spec.h"
#include "codegen/moe.h"
#include "runtime/moe_routing.h"
#include "codegen/qmatmul.h"
#include "codegen/repack.h"
#include "codegen/thread_pool.h"
#include "ir/weight_type.h"
#include "schemes/all_schemes.h"
#include "schemes/gguf/blocks.h"
#include "schemes/gguf/gguf_type.h"
#include "support/float16.h"

namespace qlc::bench {
namespace {

using codegen::KernelSpec;
using codegen::ThreadPool;

/// Decode benchmarks rotate through copies of their weights totalling at least this many bytes, so
/// that every iteration reads its weights from DRAM (this is >> the last-level cache).
constexpr int64_t kRotateBytes = int64_t(1) << 30;
/// The bandwidth buffer.
constexpr int64_t kStreamBytes = int64_t(2) << 30;

// ---- timing through Google Benchmark, results captured for the ratios -----------------------

struct Meta {
  std::string group;  ///< "bw", "dense", "mlp", "moe"
  std::string shape;  ///< "4096x4096" (N x K), "mixtral", ...
  int64_t m = 0;      ///< rows of x (tokens)
  std::string impl;   ///< "eigen", "Q4_0", "Q4_K", "AWQ", "AWQ-f32", "GPTQ", "GPTQ-f32", "stream"
  unsigned threads = 1;
  double flops = 0;   ///< per iteration
  double bytes = 0;   ///< weight bytes read per iteration (quantized for qlc, f32 for Eigen)
};
std::map<std::string, Meta> &metas() {
  static std::map<std::string, Meta> m;
  return m;
}
std::map<std::string, double> &seconds() { // name -> seconds per iteration
  static std::map<std::string, double> s;
  return s;
}

class Reporter : public benchmark::ConsoleReporter {
public:
  void ReportRuns(const std::vector<Run> &runs) override {
    for (const Run &r : runs)
      if (r.run_type == Run::RT_Iteration && r.iterations > 0 && !r.error_occurred)
        seconds()[r.run_name.function_name] = r.real_accumulated_time / double(r.iterations);
    ConsoleReporter::ReportRuns(runs);
  }
};

void setCounters(benchmark::State &st, const Meta &m) {
  using C = benchmark::Counter;
  if (m.flops > 0)
    st.counters["FLOP/s"] = C(m.flops, C::kIsIterationInvariantRate);
  st.counters["B/s"] = C(m.bytes, C::kIsIterationInvariantRate);
}

// ---- synthetic quantized weights ---------------------------------------------------------------

enum class Fmt {
  Q4_0, Q4_K, AWQ, GPTQ, Q5_K, Q3_K, Q2_K, Q4_1, Q5_0, Q5_1, Q6_K, Q8_0, Marlin, NpuW4, W8A8
};
/// The formats benchmarked on two cases only (decode 4096x14336, prefill 512 x 4096x4096): the
/// other GGUF types, Marlin 4-bit (GPTQ's sym g128 export after marlin-repack), the Ascend
/// W4A16 layout (npu_w4 g128, run on the CPU) and W8A8 (int8 weights, per-token activations).
const std::vector<Fmt> kTwoCaseFmts = {Fmt::Q5_K, Fmt::Q6_K, Fmt::Q3_K, Fmt::Q2_K, Fmt::Q4_1,
                                       Fmt::Q5_0, Fmt::Q5_1, Fmt::Q8_0, Fmt::Marlin, Fmt::NpuW4,
                                       Fmt::W8A8};
const char *fmtName(Fmt f) {
  switch (f) {
  case Fmt::Q4_0: return "Q4_0";
  case Fmt::Q4_K: return "Q4_K";
  case Fmt::AWQ: return "AWQ";
  case Fmt::GPTQ: return "GPTQ";
  case Fmt::Q5_K: return "Q5_K";
  case Fmt::Q3_K: return "Q3_K";
  case Fmt::Q2_K: return "Q2_K";
  case Fmt::Q4_1: return "Q4_1";
  case Fmt::Q5_0: return "Q5_0";
  case Fmt::Q5_1: return "Q5_1";
  case Fmt::Q6_K: return "Q6_K";
  case Fmt::Q8_0: return "Q8_0";
  case Fmt::Marlin: return "Marlin";
  case Fmt::NpuW4: return "NPU_W4";
  case Fmt::W8A8: return "W8A8";
  }
  return "?";
}
/// impl names: a format ("Q4_0", "AWQ", ...), optionally "-f32" to force f32 activations where
/// the format's default (on this host) is int8.
Fmt fmtOf(const std::string &impl) {
  std::string f = impl.substr(0, impl.find('-'));
  for (Fmt x : kTwoCaseFmts)
    if (f == fmtName(x))
      return x;
  return f == "Q4_0" ? Fmt::Q4_0 : f == "Q4_K" ? Fmt::Q4_K : f == "AWQ" ? Fmt::AWQ : Fmt::GPTQ;
}
bool forcesF32(const std::string &impl) { return impl.size() > 4 && impl.substr(impl.size() - 4) == "-f32"; }

uint64_t splitmix(uint64_t &s) {
  uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void fillRandom(std::vector<uint8_t> &v, uint64_t seed) {
  size_t i = 0;
  for (; i + 8 <= v.size(); i += 8) {
    uint64_t r = splitmix(seed);
    std::memcpy(v.data() + i, &r, 8);
  }
  for (; i < v.size(); ++i)
    v[i] = uint8_t(splitmix(seed));
}

/// A small positive f16 scale (random in [lo, 2 lo)).
uint16_t scaleBits(uint64_t &s, float lo) {
  return floatToHalf(lo * (1.f + float(splitmix(s) >> 40) / float(1 << 24)));
}

/// `copies` copies (or experts) of one [N, K] quantized weight, each with random codes and sane
/// scales: valid blocks for the format, generated fast (no quantizer run).
struct QWeights {
  Fmt fmt;
  int64_t n = 0, k = 0, copies = 0;
  WeightType type;
  KernelSpec spec;
  std::vector<std::vector<uint8_t>> pools; ///< per part slot: copies x partBytes
  std::vector<int64_t> partBytes;
  std::vector<ElemKind> kinds; ///< per part slot
  int64_t bytes() const {
    int64_t b = 0;
    for (int64_t p : partBytes)
      b += p;
    return b;
  }
  std::vector<const uint8_t *> ptrs(int64_t c) const {
    std::vector<const uint8_t *> v;
    for (size_t i = 0; i < pools.size(); ++i)
      v.push_back(pools[i].data() + c * partBytes[i]);
    return v;
  }
  /// The reference dequantization of copy c ([N, K] f32).
  std::vector<float> dequantize(int64_t c) const {
    PartBytesMap m;
    std::vector<std::string> slots = spec.partSlots();
    std::vector<std::vector<uint8_t>> rows(slots.size()); // repacked parts in checkpoint order
    for (size_t i = 0; i < slots.size(); ++i) {
      if (slots[i].empty())
        continue;
      const uint8_t *at = pools[i].data() + c * partBytes[i];
      if (codegen::isRepackedPart(spec, i)) {
        rows[i].resize(size_t(partBytes[i]));
        codegen::unrepackPart(spec, i, at, rows[i].data(), 1);
        at = rows[i].data();
      }
      m[slots[i]] = PartView{kinds[i], llvm::ArrayRef<uint8_t>(at, size_t(partBytes[i]))};
    }
    std::vector<float> w(size_t(n * k));
    std::string err = type.def->dequantize(type, m, w.data());
    if (!err.empty()) {
      std::fprintf(stderr, "qlc-bench: dequantize: %s\n", err.c_str());
      std::abort();
    }
    return w;
  }
};

WeightType buildType(const std::string &mnemonic, AttrDict params) {
  schemes::registerAllSchemes();
  const WeightTypeDef *def = WeightTypeRegistry::get().lookup(mnemonic);
  std::string err;
  auto t = WeightTypeRegistry::get().build(def, params, err);
  if (!t) {
    std::fprintf(stderr, "qlc-bench: %s\n", err.c_str());
    std::abort();
  }
  return *t;
}

std::unique_ptr<QWeights> makeWeights(Fmt fmt, int64_t n, int64_t k, int64_t copies,
                                      uint64_t seed) {
  auto q = std::make_unique<QWeights>();
  q->fmt = fmt;
  q->n = n;
  q->k = k;
  q->copies = copies;
  std::vector<int64_t> shape = {n, k};
  std::vector<std::pair<std::string, ElemKind>> elems;
  if (fmt == Fmt::AWQ) {
    const int64_t g = 128;
    q->type = buildType("awq", {{"bits", Attribute(int64_t(4))},
                                {"group", Attribute(g)},
                                {"shape", Attribute(shape)}});
    q->partBytes = {k * n / 8 * 4, k / g * n / 8 * 4, k / g * n * 2};
    elems = {{"qweight", ElemKind::I32}, {"qzeros", ElemKind::I32}, {"scales", ElemKind::F16}};
  } else if (fmt == Fmt::GPTQ) { // the common export: sym, v2 zeros, no act-order, group 128
    const int64_t g = 128;
    q->type = buildType("gptq", {{"bits", Attribute(int64_t(4))},
                                 {"group", Attribute(g)},
                                 {"sym", Attribute(true)},
                                 {"format", Attribute::ident("v2")},
                                 {"desc_act", Attribute(false)},
                                 {"shape", Attribute(shape)}});
    q->partBytes = {k / 8 * n * 4, k / g * n / 8 * 4, k / g * n * 2};
    elems = {{"qweight", ElemKind::I32}, {"qzeros", ElemKind::I32}, {"scales", ElemKind::F16}};
  } else if (fmt == Fmt::Marlin) {
    q->type = buildType("marlin", {{"bits", Attribute(int64_t(4))},
                                   {"group", Attribute(int64_t(128))},
                                   {"zero_point", Attribute(false)},
                                   {"act_order", Attribute(false)},
                                   {"shape", Attribute(shape)}});
    elems = {{"qweight", ElemKind::I32}, {"scales", ElemKind::F16}};
  } else if (fmt == Fmt::NpuW4) {
    q->type = buildType("npu_w4", {{"group", Attribute(int64_t(128))},
                                   {"shape", Attribute(shape)}});
    elems = {{"weight", ElemKind::I32}, {"antiquant_scale", ElemKind::F16}};
  } else if (fmt == Fmt::W8A8) {
    q->type = buildType("w8a8", {{"shape", Attribute(shape)}});
    elems = {{"weight", ElemKind::I8},
             {"weight_scale", ElemKind::F16},
             {"weight_offset", ElemKind::F16}};
  } else {
    q->type = buildType("gguf", {{"type", Attribute::ident(fmtName(fmt))},
                                 {"shape", Attribute(shape)}});
    uint32_t id = *schemes::ggufTypeId(fmtName(fmt));
    q->partBytes = {n * (k / gguf::blockElements(id)) * gguf::blockBytes(id)};
    elems = {{"data", ElemKind::U8}};
  }
  auto sr = codegen::specForWeightType(q->type, elems);
  if (!sr.spec) {
    std::fprintf(stderr, "qlc-bench: no kernel for %s: %s\n", fmtName(fmt), sr.reason.c_str());
    std::abort();
  }
  q->spec = *sr.spec;
  // The parts in the kernel's slot order: random codes, small positive f16 scales, zero offsets.
  const bool named = fmt == Fmt::Marlin || fmt == Fmt::NpuW4 || fmt == Fmt::W8A8;
  if (named) {
    const int64_t codeBytes = fmt == Fmt::W8A8 ? n * k : n * k / 2;
    const int64_t scaleBytes = fmt == Fmt::W8A8 ? n * 2 : k / 128 * n * 2;
    for (const std::string &slot : q->spec.partSlots()) {
      const bool code = slot == "qweight" || slot == "weight";
      q->partBytes.push_back(slot.empty() ? 0 : code ? codeBytes : scaleBytes);
      q->kinds.push_back(code ? (fmt == Fmt::W8A8 ? ElemKind::I8 : ElemKind::I32) : ElemKind::F16);
    }
  } else {
    const bool words = fmt == Fmt::AWQ || fmt == Fmt::GPTQ;
    q->kinds = {words ? ElemKind::I32 : ElemKind::U8, ElemKind::I32, ElemKind::F16};
    q->kinds.resize(q->partBytes.size());
  }
  uint64_t s = seed * 7919 + 1;
  for (size_t i = 0; i < q->partBytes.size(); ++i) {
    q->pools.emplace_back(size_t(q->partBytes[i] * copies));
    fillRandom(q->pools.back(), seed * 31 + i);
  }
  std::vector<uint8_t> &p0 = q->pools[0];
  if (named) {
    const std::vector<std::string> slots = q->spec.partSlots();
    for (size_t i = 0; i < slots.size(); ++i) {
      if (slots[i] == "weight_offset")
        std::fill(q->pools[i].begin(), q->pools[i].end(), 0);
      else if (slots[i] == "scales" || slots[i] == "antiquant_scale" || slots[i] == "weight_scale")
        for (size_t b = 0; b < q->pools[i].size(); b += 2) {
          uint16_t d = scaleBits(s, fmt == Fmt::W8A8 ? 0.0002f : 0.002f);
          std::memcpy(&q->pools[i][b], &d, 2);
        }
    }
  } else if (fmt != Fmt::AWQ && fmt != Fmt::GPTQ) { // GGUF: d (and dmin / m)
    const uint32_t id = *schemes::ggufTypeId(fmtName(fmt));
    const int64_t bb = gguf::blockBytes(id);
    const float lo = fmt == Fmt::Q4_0 ? 0.002f : 0.0005f;
    for (size_t b = 0; b < p0.size(); b += size_t(bb))
      for (int o : gguf::halfFieldOffsets(id)) {
        uint16_t d = scaleBits(s, lo);
        std::memcpy(&p0[b + size_t(o)], &d, 2);
      }
  } else { // AWQ / GPTQ: f16 scales
    std::vector<uint8_t> &sc = q->pools[2];
    for (size_t b = 0; b < sc.size(); b += 2) {
      uint16_t d = scaleBits(s, 0.002f);
      std::memcpy(&sc[b], &d, 2);
    }
  }
  // The kernels' layout, as the cpu executor prepares it (codegen/repack.h).
  for (size_t i = 0; i < q->pools.size(); ++i)
    if (codegen::isRepackedPart(q->spec, i)) {
      std::vector<uint8_t> packed(q->pools[i].size());
      codegen::repackPart(q->spec, i, q->pools[i].data(), packed.data(), copies);
      q->pools[i] = std::move(packed);
    }
  return q;
}

/// The quantized bytes of one [n, k] weight of format f (n a multiple of 64).
int64_t weightBytes(Fmt f, int64_t n, int64_t k) {
  return makeWeights(f, 64, k, 1, 0)->bytes() * (n / 64);
}

std::vector<float> randomFloats(int64_t n, uint32_t seed, float scale = 1.f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.f, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (float &x : v)
    x = d(rng);
  return v;
}

void check(llvm::Error e) {
  if (e) {
    std::fprintf(stderr, "qlc-bench: %s\n", llvm::toString(std::move(e)).c_str());
    std::abort();
  }
}

ThreadPool *poolFor(unsigned threads) { return threads == 1 ? nullptr : &ThreadPool::global(); }
unsigned allThreads() { return ThreadPool::global().size(); }

/// Runs fn(nb, ne) over [0, n) split into aligned chunks on `threads` threads (Eigen baselines).
void splitN(unsigned threads, int64_t n, const std::function<void(int64_t, int64_t)> &fn) {
  if (threads == 1) {
    fn(0, n);
    return;
  }
  const int64_t chunks = 4 * int64_t(threads), per = ((n + chunks - 1) / chunks + 15) / 16 * 16;
  ThreadPool::global().parallelFor((n + per - 1) / per, [&](int64_t c, unsigned) {
    fn(c * per, std::min(n, (c + 1) * per));
  });
}

// ---- the shared kernel cache (its compile times are reported) -------------------------------

codegen::KernelCache &cache() {
  static codegen::KernelCache c;
  return c;
}

// ---- cases -----------------------------------------------------------------------------------

/// Weights of one dense shape, kept while that shape's benchmarks run.
struct DenseSet {
  std::string key;
  std::map<std::string, std::unique_ptr<QWeights>> q;
  std::vector<float> eigen; ///< copies of the dequantized Q4_0 weight
  int64_t eigenCopies = 0;
};
DenseSet &denseSet() {
  static DenseSet d;
  return d;
}

int64_t copiesFor(int64_t bytes) { return std::max<int64_t>(1, (kRotateBytes + bytes - 1) / bytes); }

/// The weights of shape n x k for `impl` (built on first use; other shapes are dropped).
DenseSet &dense(int64_t n, int64_t k) {
  DenseSet &d = denseSet();
  std::string key = std::to_string(n) + "x" + std::to_string(k);
  if (d.key == key)
    return d;
  d.q.clear();
  d.eigen.clear();
  d.eigen.shrink_to_fit();
  d.key = key;
  auto t0 = std::chrono::steady_clock::now();
  for (Fmt f : {Fmt::Q4_0, Fmt::Q4_K, Fmt::AWQ, Fmt::GPTQ}) {
    int64_t one = weightBytes(f, n, k);
    d.q[fmtName(f)] = makeWeights(f, n, k, copiesFor(one), uint64_t(n * 131 + k) + int(f));
  }
  std::vector<float> w0 = d.q["Q4_0"]->dequantize(0);
  d.eigenCopies = copiesFor(n * k * 4);
  d.eigen.resize(size_t(d.eigenCopies * n * k));
  for (int64_t c = 0; c < d.eigenCopies; ++c)
    std::copy(w0.begin(), w0.end(), d.eigen.begin() + c * n * k);
  // Sanity: qlc's Q4_0 GEMV agrees with Eigen on the same weights.
  std::vector<float> x = randomFloats(k, 5), ya(static_cast<size_t>(n)), yb(static_cast<size_t>(n));
  check(codegen::runQMatmul(d.q["Q4_0"]->spec, d.q["Q4_0"]->ptrs(0).data(), x.data(), 1, ya.data(),
                            nullptr, cache()));
  eigenGemv(d.eigen.data(), n, k, x.data(), yb.data(), 0, n);
  double diff = 0, mag = 0;
  for (int64_t i = 0; i < n; ++i) {
    diff = std::max(diff, double(std::fabs(ya[size_t(i)] - yb[size_t(i)])));
    mag = std::max(mag, double(std::fabs(yb[size_t(i)])));
  }
  std::fprintf(stderr, "qlc-bench: %s weights ready in %.1f s (qlc Q4_0 vs Eigen: max|diff| / "
                       "max|y| = %.2g, y[0] = %g vs %g)\n", key.c_str(),
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
               diff / std::max(mag, 1e-30), double(ya[0]), double(yb[0]));
  return d;
}

/// The weights of format f in d: the extra GGUF formats are built on first use, and only one of
/// them is kept at a time (each is >= 1 GiB of copies).
const QWeights &denseWeights(DenseSet &d, Fmt f, int64_t n, int64_t k) {
  auto it = d.q.find(fmtName(f));
  if (it != d.q.end())
    return *it->second;
  for (Fmt x : kTwoCaseFmts)
    d.q.erase(fmtName(x));
  int64_t one = weightBytes(f, n, k);
  auto &q = d.q[fmtName(f)];
  q = makeWeights(f, n, k, copiesFor(one), uint64_t(n * 131 + k) + int(f));
  return *q;
}

void registerBench(const std::string &name, Meta meta,
                   std::function<void(benchmark::State &)> fn, double minTime) {
  metas()[name] = meta;
  benchmark::RegisterBenchmark(name.c_str(), [fn, meta](benchmark::State &st) {
    fn(st);
    setCounters(st, meta);
  })->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(minTime);
}

std::string tname(unsigned t) {
  std::string s = std::to_string(t); // appended, not "t" + ...: GCC 12's -Wrestrict false positive
  return s.insert(0, 1, 't');
}

void registerStream(double minTime) {
  static std::vector<float, std::allocator<float>> *buf = nullptr;
  for (unsigned t : std::set<unsigned>{1, allThreads()}) {
    Meta m{"bw", "stream", 0, "stream", t, 0, double(kStreamBytes)};
    registerBench("bw/stream-sum/" + tname(t), m, [t](benchmark::State &st) {
      const int64_t n = kStreamBytes / 4;
      if (!buf) {
        buf = new std::vector<float>(size_t(n) + 16, 1.f);
      }
      // 64-byte aligned start.
      float *p = buf->data();
      while (reinterpret_cast<uintptr_t>(p) % 64)
        ++p;
      for (auto _ : st) {
        const int64_t chunks = t == 1 ? 1 : 16 * int64_t(t), per = n / chunks / 64 * 64;
        std::vector<float> part(static_cast<size_t>(chunks));
        if (t == 1)
          part[0] = streamSum(p, per);
        else
          ThreadPool::global().parallelFor(chunks, [&](int64_t c, unsigned) {
            part[size_t(c)] = streamSum(p + c * per, per);
          });
        benchmark::DoNotOptimize(part.data());
      }
    }, minTime);
  }
}

void registerDense(int64_t n, int64_t k, int64_t m, unsigned t, const std::string &impl,
                   double minTime) {
  std::string shape = std::to_string(n) + "x" + std::to_string(k);
  std::string name = "dense/" + shape + "/M" + std::to_string(m) + "/" + impl + "/" + tname(t);
  Meta meta{"dense", shape, m, impl, t, 2.0 * double(n) * double(k) * double(m), 0};
  if (impl == "eigen")
    meta.bytes = double(n) * double(k) * 4;
  else
    meta.bytes = double(weightBytes(fmtOf(impl), n, k));
  registerBench(name, meta, [=](benchmark::State &st) {
    DenseSet &d = dense(n, k);
    std::vector<float> x = randomFloats(m * k, 7), y(size_t(m * n));
    int64_t c = 0;
    if (impl == "eigen") {
      for (auto _ : st) {
        const float *w = d.eigen.data() + (m == 1 ? c++ % d.eigenCopies : 0) * n * k;
        splitN(t, n, [&](int64_t nb, int64_t ne) {
          if (m == 1)
            eigenGemv(w, n, k, x.data(), y.data(), nb, ne);
          else
            eigenGemm(w, n, k, x.data(), m, y.data(), nb, ne);
        });
        benchmark::DoNotOptimize(y.data());
      }
    } else {
      const QWeights &q = denseWeights(d, fmtOf(impl), n, k);
      codegen::KernelSpec spec = q.spec;
      // The f32 kernels then read the bytes laid out for the int8 ones (codegen/repack.h): the
      // same bytes at the same addresses, so the same time; the bench does not check results.
      if (forcesF32(impl))
        spec.act = codegen::Activations::F32;
      std::vector<std::vector<const uint8_t *>> ptrs;
      for (int64_t i = 0; i < q.copies; ++i)
        ptrs.push_back(q.ptrs(i));
      check(codegen::runQMatmul(spec, ptrs[0].data(), x.data(), m, y.data(), poolFor(t),
                                cache())); // compile outside the timing
      for (auto _ : st) {
        const auto &p = ptrs[size_t(m == 1 ? c++ % q.copies : 0)];
        check(codegen::runQMatmul(spec, p.data(), x.data(), m, y.data(), poolFor(t), cache()));
        benchmark::DoNotOptimize(y.data());
      }
    }
  }, minTime);
}

/// One decode step of a Llama-3-8B-shaped MLP: gate and up [14336, 4096], silu(gate) * up, down
/// [4096, 14336]; weights rotated through >= 1 GiB of copies (DRAM-resident).
void registerMlp(const std::string &impl, unsigned t, double minTime) {
  const int64_t h = 4096, inter = 14336;
  Meta meta{"mlp", "mlp-14336x4096", 1, impl, t, 2.0 * 3 * double(h) * double(inter), 0};
  Fmt f = fmtOf(impl);
  meta.bytes = impl == "eigen" ? 3.0 * h * inter * 4
                               : double(weightBytes(f, inter, h) * 2 +
                                        weightBytes(f, h, inter));
  registerBench("mlp/decode/" + impl + "/" + tname(t), meta, [=](benchmark::State &st) {
    denseSet() = DenseSet(); // free the dense weights
    std::vector<float> x = randomFloats(h, 3), g(static_cast<size_t>(inter)), u(static_cast<size_t>(inter)),
                       a(static_cast<size_t>(inter)), y(static_cast<size_t>(h));
    auto act = [&] {
      for (int64_t i = 0; i < inter; ++i)
        a[size_t(i)] = g[size_t(i)] / (1.f + std::exp(-g[size_t(i)])) * u[size_t(i)];
    };
    if (impl == "eigen") {
      const int64_t copies = std::max<int64_t>(1, kRotateBytes / int64_t(meta.bytes) + 1);
      std::vector<float> w = randomFloats(3 * h * inter, 11, 0.02f);
      std::vector<float> ws(size_t(copies) * w.size());
      for (int64_t c = 0; c < copies; ++c)
        std::copy(w.begin(), w.end(), ws.begin() + c * int64_t(w.size()));
      int64_t c = 0;
      for (auto _ : st) {
        const float *base = ws.data() + (c++ % copies) * int64_t(w.size());
        const float *wg = base, *wu = base + h * inter, *wd = base + 2 * h * inter;
        splitN(t, inter, [&](int64_t nb, int64_t ne) {
          eigenGemv(wg, inter, h, x.data(), g.data(), nb, ne);
          eigenGemv(wu, inter, h, x.data(), u.data(), nb, ne);
        });
        act();
        splitN(t, h, [&](int64_t nb, int64_t ne) { eigenGemv(wd, h, inter, a.data(), y.data(), nb, ne); });
        benchmark::DoNotOptimize(y.data());
      }
      return;
    }
    const int64_t copies = std::max<int64_t>(1, kRotateBytes / int64_t(meta.bytes) + 1);
    auto gate = makeWeights(f, inter, h, copies, 21), up = makeWeights(f, inter, h, copies, 22),
         down = makeWeights(f, h, inter, copies, 23);
    if (forcesF32(impl))
      for (QWeights *q : {gate.get(), up.get(), down.get()})
        q->spec.act = codegen::Activations::F32;
    auto step = [&](int64_t c) {
      check(codegen::runQMatmul(gate->spec, gate->ptrs(c).data(), x.data(), 1, g.data(), poolFor(t), cache()));
      check(codegen::runQMatmul(up->spec, up->ptrs(c).data(), x.data(), 1, u.data(), poolFor(t), cache()));
      act();
      check(codegen::runQMatmul(down->spec, down->ptrs(c).data(), a.data(), 1, y.data(), poolFor(t), cache()));
    };
    step(0);
    int64_t c = 0;
    for (auto _ : st) {
      step(c++ % copies);
      benchmark::DoNotOptimize(y.data());
    }
  }, minTime);
}

struct MoeModel {
  std::string name;
  int64_t experts, topK, h, inter;
};

struct MoeSet {
  std::string key;
  std::unique_ptr<QWeights> w13, w2;
};
MoeSet &moeSet() {
  static MoeSet s;
  return s;
}

void registerMoe(const MoeModel &mm, Fmt f, int64_t tokens, unsigned t, double minTime) {
  const int64_t R = 16; // logit sets rotated (different experts every iteration)
  std::string name = "moe/" + mm.name + "/T" + std::to_string(tokens) + "/" + fmtName(f) + "/" +
                     tname(t);
  Meta meta{"moe", mm.name, tokens, fmtName(f), t,
            2.0 * double(tokens * mm.topK) * double(3 * mm.h * mm.inter), 0};
  // Bytes: the distinct experts a token batch touches (averaged over the logit sets) x expert size.
  std::vector<std::vector<float>> logits;
  double touched = 0;
  codegen::MoeConfig cfg;
  cfg.topK = mm.topK;
  cfg.renormalize = true;
  for (int64_t r = 0; r < R; ++r) {
    logits.push_back(randomFloats(tokens * mm.experts, uint32_t(1000 + r)));
    const std::vector<int64_t> ex =
        routeTopK(logits.back().data(), tokens, mm.experts, mm.topK, true).expert;
    touched += double(std::set<int64_t>(ex.begin(), ex.end()).size()) / double(R);
  }
  double expertBytes = double(weightBytes(f, 2 * mm.inter, mm.h) +
                              weightBytes(f, mm.h, mm.inter));
  meta.bytes = touched * expertBytes;
  registerBench(name, meta, [=](benchmark::State &st) {
    denseSet() = DenseSet();
    MoeSet &s = moeSet();
    std::string key = mm.name + fmtName(f);
    if (s.key != key) {
      s = MoeSet();
      s.key = key;
      s.w13 = makeWeights(f, 2 * mm.inter, mm.h, mm.experts, 41);
      s.w2 = makeWeights(f, mm.h, mm.inter, mm.experts, 42);
    }
    auto stacked = [&](const QWeights &q) {
      codegen::ExpertWeight w;
      w.spec = q.spec;
      w.experts = q.copies;
      for (int64_t e = 0; e < q.copies; ++e)
        for (const uint8_t *p : q.ptrs(e))
          w.parts.push_back(p);
      return w;
    };
    codegen::ExpertWeight w13 = stacked(*s.w13), w2 = stacked(*s.w2);
    std::vector<float> x = randomFloats(tokens * mm.h, 9), y(size_t(tokens * mm.h));
    for (const KernelSpec *sp : {&w13.spec, &w2.spec}) // compile outside the timing
      for (codegen::MClass mc : {codegen::MClass::Gemv, codegen::MClass::Gemm}) {
        KernelSpec k = *sp;
        k.mclass = mc;
        auto r = cache().get(k);
        if (!r)
          check(r.takeError());
      }
    int64_t c = 0;
    for (auto _ : st) {
      check(codegen::runMoe(w13, nullptr, w2, cfg, x.data(), logits[size_t(c++ % R)].data(),
                            tokens, y.data(), poolFor(t), cache()));
      benchmark::DoNotOptimize(y.data());
    }
  }, minTime);
}

std::string readFile(const char *path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string cpuModel() {
  std::string s = readFile("/proc/cpuinfo");
  size_t p = s.find("model name");
  if (p == std::string::npos)
    return "?";
  p = s.find(':', p) + 2;
  return s.substr(p, s.find('\n', p) - p);
}

std::string loadavg() {
  std::string s = readFile("/proc/loadavg");
  return s.substr(0, s.find(' ', s.find(' ', s.find(' ') + 1) + 1));
}

std::string jsonEscape(const std::string &s) {
  std::string o;
  for (char c : s)
    o += c == '"' || c == '\\' ? std::string("\\") + c : std::string(1, c);
  return o;
}

} // namespace

int runBench(const BenchOptions &opts) {
  schemes::registerAllSchemes();
  const unsigned all = allThreads();
  const std::set<unsigned> threads = {1, all};
  const double mt = opts.minTime;
  const std::string loadBefore = loadavg();
  registerStream(mt);
  std::vector<std::pair<int64_t, int64_t>> shapes = {{4096, 4096}, {4096, 14336}, {14336, 4096}};
  std::vector<int64_t> ms = {1, 512};
  std::vector<std::string> impls = {"eigen", "Q4_0", "Q4_K", "AWQ", "AWQ-f32", "GPTQ", "GPTQ-f32"};
  if (opts.quick) {
    shapes = {{4096, 4096}};
    ms = {1, 64};
  }
  for (auto [n, k] : shapes)
    for (int64_t m : ms)
      for (unsigned t : threads)
        for (const std::string &impl : impls)
          registerDense(n, k, m, t, impl, mt);
  // The other formats (int8 activations where the host has VNNI and the format has them, and
  // f32): decode of a 4096 x 14336 down projection and a 512-token prefill of 4096 x 4096, on
  // all threads. (Shape-major: a shape's weights are built once.)
  for (bool prefill : {false, true})
    for (Fmt f : kTwoCaseFmts)
      for (std::string impl : {std::string(fmtName(f)), std::string(fmtName(f)) + "-f32"})
        registerDense(4096, prefill || opts.quick ? 4096 : 14336,
                      prefill ? (opts.quick ? 64 : 512) : 1, all, impl, mt);
  if (!opts.quick)
    for (unsigned t : threads)
      for (const std::string &impl : impls)
        registerMlp(impl, t, mt);
  std::vector<MoeModel> models = {{"mixtral", 8, 2, 4096, 14336}, {"qwen3-30b-a3b", 128, 8, 2048, 768}};
  std::vector<int64_t> toks = {1, 16, 512};
  std::vector<Fmt> moeFmts = {Fmt::Q4_0, Fmt::Q4_K};
  if (opts.quick) {
    models = {models[1]};
    toks = {1, 16};
    moeFmts = {Fmt::Q4_0};
  }
  for (const MoeModel &mm : models)
    for (Fmt f : moeFmts)
      for (int64_t tk : toks)
        registerMoe(mm, f, tk, all, mt);

  std::vector<std::string> args = {"qlc-bench"};
  if (!isatty(1))
    args.push_back("--benchmark_color=false");
  if (!opts.filter.empty())
    args.push_back("--benchmark_filter=" + opts.filter);
  std::vector<char *> argv;
  for (std::string &a : args)
    argv.push_back(a.data());
  int argc = int(argv.size());
  benchmark::Initialize(&argc, argv.data());
  Reporter rep;
  benchmark::RunSpecifiedBenchmarks(&rep);
  benchmark::Shutdown();
  const std::string loadAfter = loadavg();

  // ---- the report ----
  std::map<unsigned, double> bw; // threads -> GB/s
  for (const auto &[name, sec] : seconds())
    if (metas()[name].group == "bw")
      bw[metas()[name].threads] = metas()[name].bytes / sec / 1e9;
  auto eigenSec = [&](const Meta &m) -> double {
    for (const auto &[name, sec] : seconds()) {
      const Meta &e = metas()[name];
      if (e.impl == "eigen" && e.group == m.group && e.shape == m.shape && e.m == m.m &&
          e.threads == m.threads)
        return sec;
    }
    return 0;
  };
  std::printf("\nqlc-bench: %s, %u threads, host %s (%d f32 lanes), load average %s -> %s\n",
              cpuModel().c_str(), all, codegen::hostCpuName().c_str(), codegen::hostVectorWidth(),
              loadBefore.c_str(), loadAfter.c_str());
  for (auto [t, g] : bw)
    std::printf("streaming read bandwidth (%s sum), %u thread(s): %.1f GB/s\n", "2 GiB", t, g);
  std::printf("\n%-44s %10s %10s %9s %8s %8s\n", "case", "ms", "GFLOP/s", "GB/s", "xBW", "xEigen");
  std::ostringstream js;
  js << "{\n  \"machine\": {\"cpu\": \"" << jsonEscape(cpuModel()) << "\", \"threads\": " << all
     << ", \"host\": \"" << codegen::hostCpuName() << "\", \"lanes\": "
     << codegen::hostVectorWidth() << ", \"load_before\": \"" << loadBefore
     << "\", \"load_after\": \"" << loadAfter << "\"},\n  \"bandwidth\": {";
  bool first = true;
  for (auto [t, g] : bw) {
    js << (first ? "" : ", ") << "\"" << t << "\": " << g;
    first = false;
  }
  js << "},\n  \"results\": [\n";
  first = true;
  for (const auto &[name, sec] : seconds()) {
    const Meta &m = metas()[name];
    if (m.group == "bw")
      continue;
    double gflops = m.flops / sec / 1e9, gbs = m.bytes / sec / 1e9;
    double xbw = bw.count(m.threads) ? gbs / bw[m.threads] : 0;
    double es = m.impl == "eigen" ? 0 : eigenSec(m);
    double xe = es > 0 ? es / sec : 0;
    std::printf("%-44s %10.3f %10.1f %9.1f %7.0f%% %8s\n", name.c_str(), sec * 1e3, gflops, gbs,
                100 * xbw, xe > 0 ? (std::to_string(xe).substr(0, 4) + "x").c_str() : "-");
    js << (first ? "" : ",\n") << "    {\"name\": \"" << name << "\", \"group\": \"" << m.group
       << "\", \"shape\": \"" << m.shape << "\", \"m\": " << m.m << ", \"impl\": \"" << m.impl
       << "\", \"threads\": " << m.threads << ", \"ms\": " << sec * 1e3
       << ", \"gflops\": " << gflops << ", \"gbs\": " << gbs << ", \"x_bw\": " << xbw
       << ", \"x_eigen\": " << xe << "}";
    first = false;
  }
  // Compile times: the first compile (in the benchmark process, next to its weights and busy
  // pool) and the least CPU time of it and two more compiles of the same spec, each in a fresh
  // cache (one compile can take up to 2x longer than the next in this process).
  std::printf("\nJIT compile time per kernel (IR generation + kernel pipeline + machine code): wall "
              "and CPU time of the compiling thread at the first compile, least CPU time of 3:\n");
  auto times = cache().compileTimes(), cpuTimes = cache().compileTimes(true);
  std::vector<KernelSpec> specs = cache().specs();
  std::vector<double> minCpu(times.size());
  for (size_t i = 0; i < times.size(); ++i) {
    minCpu[i] = cpuTimes[i].second;
    for (int r = 0; r < 2; ++r) {
      codegen::KernelCache fresh;
      auto k = fresh.get(specs[i]);
      if (!k) {
        std::fprintf(stderr, "qlc-bench: %s\n", llvm::toString(k.takeError()).c_str());
        return 1;
      }
      minCpu[i] = std::min(minCpu[i], (*k)->compileCpuMs);
    }
  }
  double total = 0, totalCpu = 0, totalMin = 0;
  size_t over = 0;
  auto list = [&](const char *name, auto value) {
    js << "},\n  \"" << name << "\": {";
    for (size_t i = 0; i < times.size(); ++i)
      js << (i ? ", " : "") << "\"" << times[i].first << "\": " << value(i);
  };
  for (size_t i = 0; i < times.size(); ++i) {
    std::printf("  %-52s %8.1f ms  (CPU %6.1f ms, least %6.1f ms)\n", times[i].first.c_str(),
                times[i].second, cpuTimes[i].second, minCpu[i]);
    total += times[i].second;
    totalCpu += cpuTimes[i].second;
    totalMin += minCpu[i];
    over += minCpu[i] > 50;
  }
  std::printf("  %zu kernels, %.1f ms in total (CPU %.1f ms, least %.1f ms); %zu over 50 ms "
              "(least CPU time)\n", times.size(), total, totalCpu, totalMin, over);
  js << "\n  ],\n  \"compile_ms\": {";
  for (size_t i = 0; i < times.size(); ++i)
    js << (i ? ", " : "") << "\"" << times[i].first << "\": " << times[i].second;
  list("compile_cpu_ms", [&](size_t i) { return cpuTimes[i].second; });
  list("compile_cpu_min_ms", [&](size_t i) { return minCpu[i]; });
  js << "}\n}\n";
  if (!opts.json.empty()) {
    std::ofstream f(opts.json);
    f << js.str();
    if (!f) {
      std::fprintf(stderr, "qlc-bench: cannot write %s\n", opts.json.c_str());
      return 1;
    }
    std::printf("wrote %s\n", opts.json.c_str());
  }
  return 0;
}

} // namespace qlc::bench
