// Test helpers shared by the codegen unit tests: quantized weights of every layout with a kernel,
// built in memory by the schemes' quantizers, the M values, the 3-thread pool and x as the int8
// kernels see it.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <random>

#include "codegen/kernel_spec.h"
#include "codegen/qmatmul.h"
#include "codegen/repack.h"
#include "codegen/thread_pool.h"
#include "ir/weight_type.h"
#include "schemes/all_schemes.h"
#include "schemes/awq/codec.h"
#include "schemes/compressed_tensors/codec.h"
#include "schemes/gguf/blocks.h"
#include "schemes/gguf/gguf_type.h"
#include "schemes/gptq/codec.h"
#include "schemes/w8a8/codec.h"
#include "support/float16.h"

namespace qlc::testw {

/// The M values of the kernel tests: decode (1, 3; gemv) and prefill (16, 128, 513; gemm).
inline const std::vector<int64_t> kMs = {1, 3, 16, 128, 513};

/// Results on 3 threads must be bit-identical to the single-threaded ones.
inline codegen::ThreadPool &pool3() {
  static codegen::ThreadPool p(3);
  return p;
}

/// x as an int8-activation kernel sees it: per `block` elements (KernelSpec::actScaleBlock:
/// 32, or 256 for the K-quant gemm) dx = max|x| / 127 (f32),
/// q = roundeven(x / dx) (f32), x̂ = dx * q — the same IEEE operations as the kernel's, so x̂ is
/// what the kernel multiplies exactly. `half` gets the rounding bound dx/2 per element.
inline std::vector<double> quantizedX(const std::vector<float> &x, std::vector<double> &half,
                                      int64_t block = codegen::kActBlock) {
  std::vector<double> xq(x.size());
  half.assign(x.size(), 0.0);
  for (size_t b0 = 0; b0 < x.size(); b0 += size_t(block)) {
    float amax = 0;
    for (size_t i = b0; i < b0 + size_t(block); ++i)
      amax = std::max(amax, std::fabs(x[i]));
    float dx = amax / 127.0f;
    float div = amax > 0 ? dx : 1.0f;
    for (size_t i = b0; i < b0 + size_t(block); ++i) {
      xq[i] = double(dx) * double(std::nearbyint(x[i] / div));
      half[i] = 0.5 * double(dx);
    }
  }
  return xq;
}

/// A quantized weight held in memory: its type and part bytes.
struct TestWeight {
  WeightType type;
  std::map<std::string, std::pair<ElemKind, std::vector<uint8_t>>> parts;

  PartBytesMap view() const {
    PartBytesMap m;
    for (const auto &[n, p] : parts)
      m[n] = PartView{p.first, llvm::ArrayRef<uint8_t>(p.second)};
    return m;
  }
  std::vector<std::pair<std::string, ElemKind>> elems() const {
    std::vector<std::pair<std::string, ElemKind>> e;
    for (const auto &[n, p] : parts)
      e.push_back({n, p.first});
    return e;
  }
};

inline WeightType makeType(const std::string &mnemonic, AttrDict params) {
  schemes::registerAllSchemes();
  const WeightTypeDef *def = WeightTypeRegistry::get().lookup(mnemonic);
  EXPECT_NE(def, nullptr);
  std::string err;
  auto t = WeightTypeRegistry::get().build(def, params, err);
  EXPECT_TRUE(t.has_value()) << err;
  return *t;
}

template <typename T> inline std::vector<uint8_t> bytesOf(const std::vector<T> &v) {
  std::vector<uint8_t> b(v.size() * sizeof(T));
  if (!b.empty())
    std::memcpy(b.data(), v.data(), b.size());
  return b;
}

/// fp16 scale bits re-expressed in another float type (f32 exact; bf16 rounded).
inline std::pair<ElemKind, std::vector<uint8_t>> scalesAs(const std::vector<uint16_t> &h, ElemKind e) {
  if (e == ElemKind::F16)
    return {e, bytesOf(h)};
  if (e == ElemKind::F32) {
    std::vector<float> f;
    for (uint16_t x : h)
      f.push_back(halfToFloat(x));
    return {e, bytesOf(f)};
  }
  std::vector<uint16_t> b;
  for (uint16_t x : h)
    b.push_back(floatToBf16(halfToFloat(x)));
  return {e, bytesOf(b)};
}

inline std::vector<float> randomVec(int64_t n, uint32_t seed, float scale = 1.f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.f, scale);
  std::vector<float> v(size_t(n), 0.f);
  for (float &x : v)
    x = d(rng);
  return v;
}

inline std::vector<int32_t> permutation(int64_t k, uint32_t seed) {
  std::vector<int32_t> p;
  for (int64_t i = 0; i < k; ++i)
    p.push_back(int32_t(i));
  std::mt19937 rng(seed);
  std::shuffle(p.begin(), p.end(), rng);
  return p;
}

inline TestWeight ggufWeight(const std::string &type, int64_t n, int64_t k, uint32_t seed) {
  TestWeight t;
  t.type = makeType("gguf", {{"type", Attribute::ident(type)},
                             {"shape", Attribute(std::vector<int64_t>{n, k})}});
  uint32_t id = *schemes::ggufTypeId(type);
  int64_t rowBytes = k / gguf::blockElements(id) * gguf::blockBytes(id);
  std::vector<float> w = randomVec(n * k, seed, 0.05f);
  std::vector<uint8_t> data(size_t(n * rowBytes));
  for (int64_t r = 0; r < n; ++r)
    gguf::quantizeRow(id, w.data() + r * k, data.data() + r * rowBytes, k);
  t.parts["data"] = {ElemKind::U8, data};
  return t;
}

/// W8A8_DYNAMIC: per-channel symmetric int8 (w8a8::quantize) with the scales stored as `se`
/// (bf16 / f16 rounded from the f32 scale), zero offsets; a few codes set to the extremes -128
/// (allowed by int8, never written by the quantizer) and 127.
inline TestWeight w8a8Weight(int64_t n, int64_t k, ElemKind se, uint32_t seed) {
  TestWeight t;
  t.type = makeType("w8a8", {{"shape", Attribute(std::vector<int64_t>{n, k})}});
  std::vector<float> w = randomVec(n * k, seed, 0.05f);
  w8a8::Checkpoint c = w8a8::quantize(w, k, n);
  std::mt19937 rng(seed + 7);
  for (int64_t i = 0; i < std::max<int64_t>(1, n * k / 50); ++i)
    c.weight[rng() % size_t(n * k)] = int8_t(i % 2 ? 127 : -128);
  std::vector<uint16_t> h;
  for (float f : c.weightScale)
    h.push_back(se == ElemKind::BF16 ? floatToBf16(f) : floatToHalf(f));
  t.parts["weight"] = {ElemKind::I8, bytesOf(c.weight)};
  t.parts["weight_scale"] = se == ElemKind::F32 ? std::pair{se, bytesOf(c.weightScale)}
                                                : std::pair{se, bytesOf(h)};
  t.parts["weight_offset"] = {ElemKind::F16, bytesOf(std::vector<uint16_t>(size_t(n), 0))};
  return t;
}

/// AWQ with any width the type accepts (4, 8).
inline TestWeight awqWeightBits(int bits, int64_t n, int64_t k, int64_t g, ElemKind se, uint32_t seed) {
  TestWeight t;
  t.type = makeType("awq", {{"bits", Attribute(int64_t(bits))},
                            {"group", Attribute(g)},
                            {"shape", Attribute(std::vector<int64_t>{n, k})}});
  std::vector<float> w = randomVec(n * k, seed, 0.05f);
  awq::Checkpoint c = awq::quantize(w, k, n, g, bits);
  t.parts["qweight"] = {ElemKind::I32, bytesOf(c.qweight)};
  t.parts["qzeros"] = {ElemKind::I32, bytesOf(c.qzeros)};
  t.parts["scales"] = scalesAs(c.scales, se);
  return t;
}

/// GPTQ with any width the type accepts (2, 3, 4, 8).
inline TestWeight gptqWeightBits(int bits, int64_t n, int64_t k, int64_t g, bool sym, bool v1,
                                 bool descAct, ElemKind se, uint32_t seed) {
  TestWeight t;
  t.type = makeType("gptq", {{"bits", Attribute(int64_t(bits))},
                             {"group", Attribute(g)},
                             {"sym", Attribute(sym)},
                             {"format", Attribute::ident(v1 ? "v1" : "v2")},
                             {"desc_act", Attribute(descAct)},
                             {"shape", Attribute(std::vector<int64_t>{n, k})}});
  std::vector<float> w = randomVec(n * k, seed, 0.05f);
  gptq::Config cfg;
  cfg.bits = bits;
  cfg.groupSize = g;
  cfg.sym = sym;
  cfg.format = v1 ? gptq::Format::V1 : gptq::Format::V2;
  std::vector<int32_t> perm = descAct ? permutation(k, seed + 1) : std::vector<int32_t>{};
  gptq::Checkpoint c = gptq::quantize(w, k, n, cfg, perm);
  t.parts["qweight"] = {ElemKind::I32, bytesOf(c.qweight)};
  t.parts["qzeros"] = {ElemKind::I32, bytesOf(c.qzeros)};
  t.parts["scales"] = scalesAs(c.scales, se);
  if (descAct)
    t.parts["g_idx"] = {ElemKind::I32, bytesOf(c.gIdx)};
  return t;
}

/// Compressed-tensors WNA16 with any width the type accepts (4, 8); g = 0: channel strategy.
inline TestWeight ctWeightBits(int bits, int64_t n, int64_t k, int64_t g, bool sym, bool actorder,
                               bool bf16, uint32_t seed) {
  TestWeight t;
  AttrDict p{{"bits", Attribute(int64_t(bits))},
             {"symmetric", Attribute(sym)},
             {"shape", Attribute(std::vector<int64_t>{n, k})}};
  ct::Config cfg;
  cfg.bits = bits;
  cfg.symmetric = sym;
  cfg.scaleType = bf16 ? ct::ScaleType::BF16 : ct::ScaleType::F16;
  if (g == 0) {
    p["strategy"] = Attribute::ident("channel");
    cfg.strategy = ct::Strategy::Channel;
    cfg.groupSize = 0;
  } else {
    p["group"] = Attribute(g);
    cfg.groupSize = g;
  }
  if (actorder)
    p["actorder"] = Attribute::ident("group");
  t.type = makeType("ct_wna16", p);
  std::vector<float> w = randomVec(n * k, seed, 0.05f);
  std::vector<int32_t> perm = actorder ? permutation(k, seed + 1) : std::vector<int32_t>{};
  ct::Checkpoint c = ct::quantize(w, k, n, cfg, perm);
  t.parts["weight_packed"] = {ElemKind::I32, bytesOf(c.weightPacked)};
  t.parts["weight_scale"] = {bf16 ? ElemKind::BF16 : ElemKind::F16, bytesOf(c.weightScale)};
  if (!sym)
    t.parts["weight_zero_point"] = {ElemKind::I32, bytesOf(c.weightZeroPoint)};
  if (actorder)
    t.parts["weight_g_idx"] = {ElemKind::I32, bytesOf(c.weightGIdx)};
  return t;
}

/// The 4-bit builders most tests use.
inline TestWeight awqWeight(int64_t n, int64_t k, int64_t g, ElemKind se, uint32_t seed) {
  return awqWeightBits(4, n, k, g, se, seed);
}
inline TestWeight gptqWeight(int64_t n, int64_t k, int64_t g, bool sym, bool v1, bool descAct,
                             ElemKind se, uint32_t seed) {
  return gptqWeightBits(4, n, k, g, sym, v1, descAct, se, seed);
}
/// g = 0: channel strategy.
inline TestWeight ctWeight(int64_t n, int64_t k, int64_t g, bool sym, bool actorder, bool bf16,
                           uint32_t seed) {
  return ctWeightBits(4, n, k, g, sym, actorder, bf16, seed);
}

inline double gamma(int64_t d) {
  const double u = std::ldexp(1.0, -24);
  return double(d) * u / (1.0 - double(d) * u);
}

/// The parts of `tw` in the order and layout the kernel of `spec` reads them: pointers into `tw`,
/// or into `repacked` for the parts it reads re-laid-out (codegen/repack.h), as the cpu executor
/// prepares them.
inline std::vector<const uint8_t *> kernelParts(const codegen::KernelSpec &spec, const TestWeight &tw,
                                                std::vector<std::vector<uint8_t>> &repacked) {
  std::vector<const uint8_t *> ptrs;
  for (const std::string &s : spec.partSlots()) {
    const uint8_t *at = s.empty() ? nullptr : tw.parts.at(s).second.data();
    if (codegen::isRepackedPart(spec, ptrs.size())) {
      repacked.emplace_back(tw.parts.at(s).second.size());
      codegen::repackPart(spec, ptrs.size(), at, repacked.back().data(), 1);
      at = repacked.back().data(); // a later emplace_back moves the vector, not its bytes
    }
    ptrs.push_back(at);
  }
  return ptrs;
}

/// The worst errors one kernel check saw, relative to its bounds (checkKernelOutputs).
struct KernelErrors {
  double arith = 0;  ///< |y - exact| / bound (exact: x̂ · w for int8 kernels, x · w for f32)
  double ref = 0;    ///< int8: |y - x · w| / (activation rounding + bound)
  double relMag = 0; ///< int8: |y - x · w| / sum |x w|
  double relMaxY = 0; ///< int8: max |y - x · w| / max |x · w|
  void merge(const KernelErrors &o) {
    arith = std::max(arith, o.arith);
    ref = std::max(ref, o.ref);
    relMag = std::max(relMag, o.relMag);
    relMaxY = std::max(relMaxY, o.relMaxY);
  }
};

/// Runs kernel `spec` (its parts at `ptrs`, in the kernel's layout) on random x of `m` rows
/// (seed `seed`) with 1 and 3 threads, and checks every output against the f64 product with
/// `w`, the scheme hook's dequantized [N, K] weight:
///  f32 activations: |y - x·w| <= gamma(accumulationDepth) sum |x w|;
///  int8 activations: |y - x̂·w| <= gamma(K/32 + D) sum (|w| + C A) |x̂| (x̂ = quantizedX, the x
///    the kernel multiplies exactly; A = max |w| over the 32-block; D = 3 for the channel-lane
///    AWQ / GPTQ kernels, 16 for the K-vectorised ones, whose min terms C bounds), and against
///    the f32 reference that plus the activation rounding sum |w| dx/2 (1 + 2^-17);
///  the 3-thread result bit-identical to the 1-thread one.
/// The bounds' derivations are in the test files' comments and codegen/README.md.
inline KernelErrors checkKernelOutputs(const codegen::KernelSpec &spec, const uint8_t *const *ptrs,
                                       const std::vector<float> &w, int64_t m, uint32_t seed,
                                       double C) {
  KernelErrors out;
  const bool int8 = spec.act == codegen::Activations::Int8;
  const bool cols = spec.family() == codegen::Family::ColsN;
  const int64_t n = spec.n, k = spec.k;
  std::vector<double> blockMax(w.size(), 0.0);
  for (size_t b0 = 0; b0 + 32 <= w.size(); b0 += 32) {
    double a = 0;
    for (size_t i = b0; i < b0 + 32; ++i)
      a = std::max(a, std::fabs(double(w[i])));
    std::fill_n(blockMax.begin() + std::ptrdiff_t(b0), 32, a);
  }
  std::vector<float> x = randomVec(m * k, seed);
  std::vector<float> y(size_t(m * n), NAN), yMt(size_t(m * n), NAN);
  if (auto e = codegen::runQMatmul(spec, ptrs, x.data(), m, y.data(), nullptr)) {
    ADD_FAILURE() << llvm::toString(std::move(e));
    return out;
  }
  if (auto e = codegen::runQMatmul(spec, ptrs, x.data(), m, yMt.data(), &pool3())) {
    ADD_FAILURE() << llvm::toString(std::move(e));
    return out;
  }
  codegen::KernelSpec used = spec;
  used.mclass = codegen::mClassFor(m);
  // int8: one FMA per 32-block and lane (channel-lane kernels); up to 4 in the K-vectorised ones
  // (Q6_K / Q3_K / Q2_K: a scale per 16-element half; Q2_K also a min each; the wide tile adds
  // the min terms to the same accumulator).
  const double g = int8 ? (cols ? gamma(k / codegen::kActBlock + 3)
                                : gamma(4 * k / codegen::kActBlock + 16))
                        : gamma(used.accumulationDepth());
  std::vector<double> half;
  std::vector<double> xh = int8 ? quantizedX(x, half, used.actScaleBlock()) : std::vector<double>();
  int64_t bad = 0;
  double maxY = 0, maxErr = 0;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double exact = 0, mag = 0, exactQ = 0, magQ = 0, quant = 0;
      for (int64_t q = 0; q < k; ++q) {
        const size_t xi = size_t(i * k + q), wi = size_t(j * k + q);
        const double p = double(x[xi]) * double(w[wi]);
        exact += p;
        mag += std::fabs(p);
        if (int8) {
          exactQ += xh[xi] * double(w[wi]);
          magQ += (std::fabs(double(w[wi])) + C * blockMax[wi]) * std::fabs(xh[xi]);
          quant += std::fabs(double(w[wi])) * half[xi] * (1 + 0x1p-17);
        }
      }
      const size_t yi = size_t(i * n + j);
      const double got = y[yi];
      maxY = std::max(maxY, std::fabs(exact));
      const double bound = (int8 ? g * magQ : g * mag) + 1e-30;
      const double e = std::fabs(got - (int8 ? exactQ : exact));
      out.arith = std::max(out.arith, e / bound);
      if (!(e <= bound) && bad++ < 5)
        ADD_FAILURE() << "y[" << i << ", " << j << "] = " << got << ", exact "
                      << (int8 ? exactQ : exact) << ", |err| " << e << " > bound " << bound;
      if (int8) {
        const double eRef = std::fabs(got - exact), bRef = quant + bound;
        out.ref = std::max(out.ref, eRef / bRef);
        out.relMag = std::max(out.relMag, eRef / (mag + 1e-30));
        maxErr = std::max(maxErr, eRef);
        if (!(eRef <= bRef) && bad++ < 5)
          ADD_FAILURE() << "y[" << i << ", " << j << "] = " << got << ", reference " << exact
                        << ", |err| " << eRef << " > activation quantization bound " << bRef;
      }
      if (std::memcmp(&y[yi], &yMt[yi], 4) != 0 && bad++ < 5)
        ADD_FAILURE() << "3-thread y[" << i << ", " << j << "] = " << yMt[yi]
                      << " differs from 1-thread " << got;
    }
  out.relMaxY = maxErr / (maxY + 1e-30);
  EXPECT_EQ(bad, 0) << "worst |err| / bound = " << out.arith;
  return out;
}

} // namespace qlc::testw
