// Test helpers: natural quantized data (codes, zeros, scales, g_idx) -> !awq / !gptq / !ct_wna16
// parts written with the schemes' own codecs, modules built from text, the pass pipeline, and the
// reference executor.
#pragma once

#include <gtest/gtest.h>

#include <bit>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include "ir/diagnostics.h"
#include "ir/ir.h"
#include "ir/parser.h"
#include "ir/verifier.h"
#include "passes/pass_manager.h"
#include "runtime/reference_executor.h"
#include "runtime/tensor.h"
#include "schemes/all_schemes.h"
#include "schemes/awq/codec.h"
#include "schemes/compressed_tensors/codec.h"
#include "schemes/gptq/codec.h"
#include "support/float16.h"

namespace qlc::marlin_test {

enum class Scheme { Awq, Gptq, Ct };

/// One source weight to generate: scheme and parameters, shape [N, K], experts (0 = plain).
struct SourceCase {
  Scheme scheme = Scheme::Awq;
  int bits = 4;
  int64_t group = 128;   // -1 = one group
  bool actOrder = false; // gptq desc_act / ct actorder = group
  bool asym = false;     // ct: symmetric = false (awq always has zero points)
  bool channel = false;  // ct: strategy = channel
  bool gptqV2 = false;
  ElemKind scaleElem = ElemKind::F16;
  int64_t n = 64, k = 128, experts = 0;

  int64_t groups() const { return group == -1 ? 1 : k / group; }
  bool hasZeros() const { return scheme == Scheme::Awq || (scheme == Scheme::Ct && asym); }
};

/// One expert's natural data, rows in ORIGINAL k order.
struct NaturalData {
  std::vector<uint8_t> codes; // [K, N] unsigned codes
  std::vector<uint8_t> zeros; // [G', N] unsigned; empty when symmetric
  std::vector<float> scales;  // [G', N], exact in f16, bf16 and f32
  std::vector<int32_t> gIdx;  // [K] when act-order
  bool operator==(const NaturalData &) const = default;
};

inline std::string hex(const std::vector<uint8_t> &b) {
  static const char d[] = "0123456789ABCDEF";
  std::string s;
  s.reserve(b.size() * 2);
  for (uint8_t x : b) {
    s += d[x >> 4];
    s += d[x & 15];
  }
  return s;
}

template <typename T> std::vector<uint8_t> toBytes(const std::vector<T> &v) {
  std::vector<uint8_t> b(v.size() * sizeof(T));
  if (!b.empty())
    std::memcpy(b.data(), v.data(), b.size());
  return b;
}

inline std::vector<uint8_t> floatBytes(const std::vector<float> &v, ElemKind e) {
  if (e == ElemKind::F32)
    return toBytes(v);
  std::vector<uint16_t> h(v.size());
  for (size_t i = 0; i < v.size(); ++i)
    h[i] = e == ElemKind::BF16 ? floatToBf16(v[i]) : floatToHalf(v[i]);
  return toBytes(h);
}

inline std::vector<float> decodeFloatBytes(const std::vector<uint8_t> &b, ElemKind e) {
  if (e == ElemKind::F32) {
    std::vector<float> f(b.size() / 4);
    std::memcpy(f.data(), b.data(), b.size());
    return f;
  }
  std::vector<uint16_t> h(b.size() / 2);
  std::memcpy(h.data(), b.data(), b.size());
  std::vector<float> f(h.size());
  for (size_t i = 0; i < h.size(); ++i)
    f[i] = e == ElemKind::BF16 ? bf16ToFloat(h[i]) : halfToFloat(h[i]);
  return f;
}

/// Random natural data; act-order g_idx as GPTQ writes it (§2.4: g_idx[perm[i]] = i / G).
inline NaturalData randomNatural(const SourceCase &c, std::mt19937 &rng) {
  NaturalData d;
  std::uniform_int_distribution<int> code(0, (1 << c.bits) - 1), mant(1, 255), sign(0, 1);
  d.codes.resize(size_t(c.k * c.n));
  for (auto &x : d.codes)
    x = uint8_t(code(rng));
  if (c.hasZeros()) {
    d.zeros.resize(size_t(c.groups() * c.n));
    for (auto &x : d.zeros)
      x = uint8_t(code(rng));
  }
  d.scales.resize(size_t(c.groups() * c.n));
  for (auto &s : d.scales) // m / 1024 with m < 256: exact in bf16, f16 and f32
    s = float(mant(rng)) / 1024.f * (sign(rng) ? -1.f : 1.f);
  if (c.actOrder) {
    std::vector<int32_t> perm(size_t(c.k));
    for (int64_t i = 0; i < c.k; ++i)
      perm[size_t(i)] = int32_t(i);
    std::shuffle(perm.begin(), perm.end(), rng);
    int64_t g = c.group == -1 ? c.k : c.group;
    d.gIdx.resize(size_t(c.k));
    for (int64_t i = 0; i < c.k; ++i)
      d.gIdx[size_t(perm[size_t(i)])] = int32_t(i / g);
  }
  return d;
}

/// The source parts of one expert, in the scheme's part order: (name, tensor type text, bytes).
struct SourcePart {
  std::string name, elem;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

inline std::string elemName(ElemKind e) {
  return e == ElemKind::F32 ? "f32" : e == ElemKind::BF16 ? "bf16" : "f16";
}

inline std::vector<SourcePart> sourceParts(const SourceCase &c, const NaturalData &d) {
  const int64_t N = c.n, K = c.k, G = c.groups();
  const int b = c.bits, pf = 32 / b;
  std::string se = elemName(c.scaleElem);
  std::vector<SourcePart> p;
  if (c.scheme == Scheme::Awq) {
    p.push_back({"qweight", "i32", {K, N / pf}, toBytes(awq::packAwq(d.codes, K, N, b))});
    p.push_back({"qzeros", "i32", {G, N / pf}, toBytes(awq::packAwq(d.zeros, G, N, b))});
    p.push_back({"scales", se, {G, N}, floatBytes(d.scales, c.scaleElem)});
  } else if (c.scheme == Scheme::Gptq) {
    uint8_t z = uint8_t((1 << (b - 1)) - (c.gptqV2 ? 0 : 1)); // sym: stored zero (v1: − 1)
    std::vector<uint8_t> zeros(size_t(G * N), z);
    p.push_back({"qweight", "i32", {K / pf, N}, toBytes(gptq::packAlongK(d.codes, K, N, b))});
    p.push_back({"qzeros", "i32", {G, N / pf}, toBytes(gptq::packAlongN(zeros, G, N, b))});
    p.push_back({"scales", se, {G, N}, floatBytes(d.scales, c.scaleElem)});
    if (c.actOrder)
      p.push_back({"g_idx", "i32", {K}, toBytes(d.gIdx)});
  } else {
    const int off = 1 << (b - 1);
    std::vector<int8_t> q(size_t(N * K)); // signed, [N, K]
    for (int64_t k = 0; k < K; ++k)
      for (int64_t n = 0; n < N; ++n)
        q[size_t(n * K + k)] = int8_t(int(d.codes[size_t(k * N + n)]) - off);
    std::vector<float> sT(size_t(N * G)); // [N, G']
    for (int64_t g = 0; g < G; ++g)
      for (int64_t n = 0; n < N; ++n)
        sT[size_t(n * G + g)] = d.scales[size_t(g * N + n)];
    p.push_back({"weight_packed", "i32", {N, K / pf}, toBytes(ct::packRows(q, N, K, b))});
    p.push_back({"weight_scale", se, {N, G}, floatBytes(sT, c.scaleElem)});
    if (c.asym) {
      std::vector<int8_t> zp(size_t(N * G));
      for (int64_t g = 0; g < G; ++g)
        for (int64_t n = 0; n < N; ++n)
          zp[size_t(n * G + g)] = int8_t(int(d.zeros[size_t(g * N + n)]) - off);
      p.push_back({"weight_zero_point", "i32", {N / pf, G}, toBytes(ct::packCols(zp, N, G, b))});
    }
    if (c.actOrder)
      p.push_back({"weight_g_idx", "i32", {K}, toBytes(d.gIdx)});
  }
  return p;
}

inline std::string shapeStr(const std::vector<int64_t> &s, int64_t experts) {
  std::string r = experts ? std::to_string(experts) + "x" : "";
  for (int64_t d : s)
    r += std::to_string(d) + "x";
  return r;
}

inline std::string typeText(const SourceCase &c) {
  std::string shape = "shape = [" + std::to_string(c.n) + ", " + std::to_string(c.k) + "]";
  std::string ex = c.experts ? ", experts = " + std::to_string(c.experts) : "";
  std::string bits = "bits = " + std::to_string(c.bits);
  std::string g = "group = " + std::to_string(c.group);
  switch (c.scheme) {
  case Scheme::Awq:
    return "!awq<" + bits + ", " + g + ", " + shape + ex + ">";
  case Scheme::Gptq:
    return "!gptq<" + bits + ", " + g + ", format = " + (c.gptqV2 ? "v2" : "v1") +
           ", desc_act = " + (c.actOrder ? "true" : "false") + ", " + shape + ex + ">";
  case Scheme::Ct:
    return "!ct_wna16<" + bits + (c.channel ? ", strategy = channel" : ", " + g) +
           ", symmetric = " + (c.asym ? "false" : "true") +
           ", actorder = " + (c.actOrder ? "group" : "none") + ", " + shape + ex + ">";
  }
  return "";
}

/// `weight @name : TYPE { part = tensor<...> = hex"...", ... }` with the experts' parts stacked.
inline std::string weightText(const std::string &name, const SourceCase &c,
                              const std::vector<NaturalData> &experts) {
  std::vector<std::vector<SourcePart>> parts;
  for (const auto &d : experts)
    parts.push_back(sourceParts(c, d));
  std::string s = "weight @" + name + " : " + typeText(c) + " {\n";
  for (size_t i = 0; i < parts[0].size(); ++i) {
    std::vector<uint8_t> all;
    for (const auto &e : parts)
      all.insert(all.end(), e[i].bytes.begin(), e[i].bytes.end());
    s += "  " + parts[0][i].name + " = tensor<" + shapeStr(parts[0][i].shape, c.experts) +
         parts[0][i].elem + "> = hex\"" + hex(all) + "\"" + (i + 1 < parts[0].size() ? "," : "") +
         "\n";
  }
  return s + "}\n";
}

/// A parsed, verified module and the diagnostics of everything done to it.
struct TestModule {
  llvm::SourceMgr sm;
  std::unique_ptr<Module> m;
  std::vector<std::string> messages;
};

inline std::unique_ptr<TestModule> parseText(const std::string &text) {
  schemes::registerAllSchemes();
  registerGenericPasses();
  auto t = std::make_unique<TestModule>();
  DiagnosticEngine diag(&t->sm);
  diag.setHandler([&](const Diagnostic &d) { t->messages.push_back(d.message); });
  t->m = parseModuleString(text, "t.qir", t->sm, diag);
  if (t->m && llvm::failed(verifyModule(*t->m, diag)))
    t->m.reset();
  std::string all;
  for (const auto &s : t->messages)
    all += s + "\n";
  EXPECT_TRUE(t->m) << all;
  return t;
}

/// Runs a pipeline; returns whether it succeeded (messages collected in t.messages).
inline bool runPipeline(TestModule &t, const std::string &pipeline) {
  DiagnosticEngine diag(&t.sm);
  diag.setHandler([&](const Diagnostic &d) { t.messages.push_back(d.message); });
  PassContext ctx{diag, nullptr};
  PassManager pm(ctx);
  std::string err = pm.addPipeline(pipeline);
  EXPECT_EQ(err, "");
  return llvm::succeeded(pm.run(*t.m));
}

inline std::vector<float> runFunc(const Module &m, const std::string &fn,
                                  const std::vector<Tensor> &in) {
  ReferenceExecutor ex(m, nullptr);
  auto out = ex.run(fn, in);
  if (!out) {
    ADD_FAILURE() << llvm::toString(out.takeError());
    return {};
  }
  return (*out)[0].toF32();
}

inline Tensor randomInput(std::vector<int64_t> shape, std::mt19937 &rng) {
  std::uniform_real_distribution<float> d(-1.f, 1.f);
  int64_t n = 1;
  for (int64_t s : shape)
    n *= s;
  std::vector<float> v(static_cast<size_t>(n));
  for (auto &x : v)
    x = d(rng);
  return Tensor::fromF32(shape, v);
}

inline ::testing::AssertionResult sameBits(const std::vector<float> &a,
                                           const std::vector<float> &b) {
  if (a.size() != b.size())
    return ::testing::AssertionFailure() << "sizes differ: " << a.size() << " vs " << b.size();
  for (size_t i = 0; i < a.size(); ++i)
    if (std::bit_cast<uint32_t>(a[i]) != std::bit_cast<uint32_t>(b[i]))
      return ::testing::AssertionFailure() << "element " << i << ": " << a[i] << " vs " << b[i];
  return ::testing::AssertionSuccess();
}

/// The parts of expert e of a weight (all inline), as a dequantize hook sees them.
inline PartBytesMap expertParts(const Weight &w, int64_t e) {
  PartBytesMap m;
  int64_t experts = std::max<int64_t>(1, w.experts());
  for (const WeightPart &p : w.parts()) {
    llvm::ArrayRef<uint8_t> all(*p.data);
    size_t n = all.size() / size_t(experts);
    m[p.name] = PartView{p.type.elem, all.slice(size_t(e) * n, n)};
  }
  return m;
}

} // namespace qlc::marlin_test
