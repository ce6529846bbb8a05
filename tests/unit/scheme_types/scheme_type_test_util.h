// Helpers of the scheme weight-type tests: build a Module holding one quantized Weight with inline
// parts, verify it (collecting the messages), slice expert stacks part by part and call the type's
// dequantize hook, compare f32 arrays bit for bit.
#pragma once

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include "ir/diagnostics.h"
#include "ir/ir.h"
#include "ir/parser.h"
#include "ir/printer.h"
#include "ir/verifier.h"
#include "schemes/all_schemes.h"
#include "support/float16.h"

namespace qlc::test {

/// Unit roundoff of the stored scale type: 2^-11 for fp16, 2^-8 for bf16.
inline constexpr double kF16Roundoff = 1.0 / 2048.0;
inline constexpr double kBf16Roundoff = 1.0 / 256.0;

/// Round-trip error bound of a min/max quantizer whose grid spans `levels` steps of the stored
/// scale s (same derivation as tests/unit/schemes/codec_test_util.h): s/2 for rounding, plus
/// levels·u·s/(1 − u) for the scale rounding (u: unit roundoff of the scale dtype), plus s·2^-15.
inline double roundTripBound(double s, double levels, double u) {
  return s * (0.5 + levels * u / (1.0 - u) + std::ldexp(1.0, -15));
}

inline std::vector<float> randomWeights(int64_t count, uint32_t seed, float lo = -1.f,
                                        float hi = 1.f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> w(static_cast<size_t>(count));
  for (auto &x : w)
    x = d(rng);
  return w;
}

inline std::vector<int32_t> randomPermutation(int64_t K, uint32_t seed) {
  std::vector<int32_t> p(static_cast<size_t>(K));
  for (int64_t i = 0; i < K; ++i)
    p[i] = int32_t(i);
  std::mt19937 rng(seed);
  std::shuffle(p.begin(), p.end(), rng);
  return p;
}

template <typename T> std::vector<uint8_t> toBytes(const std::vector<T> &v) {
  std::vector<uint8_t> b(v.size() * sizeof(T));
  if (!b.empty())
    std::memcpy(b.data(), v.data(), b.size());
  return b;
}

/// Scales as bytes of the given float element type (exact for f32; rounded for f16 / bf16).
inline std::vector<uint8_t> floatBytes(const std::vector<float> &v, ElemKind e) {
  if (e == ElemKind::F32)
    return toBytes(v);
  std::vector<uint16_t> h(v.size());
  for (size_t i = 0; i < v.size(); ++i)
    h[i] = e == ElemKind::BF16 ? floatToBf16(v[i]) : floatToHalf(v[i]);
  return toBytes(h);
}

/// One part of one expert (shape without the [E] prefix).
struct PartData {
  std::string name;
  ElemKind elem;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

/// Builds a weight type by mnemonic and parameters (defaults filled in); fails the test if the
/// registry rejects it.
inline WeightType makeType(const std::string &mnemonic, const AttrDict &params) {
  schemes::registerAllSchemes();
  const WeightTypeDef *def = WeightTypeRegistry::get().lookup(mnemonic);
  EXPECT_NE(def, nullptr) << "!" << mnemonic << " is not registered";
  std::string err;
  auto t = WeightTypeRegistry::get().build(def, params, err);
  EXPECT_TRUE(t.has_value()) << err;
  return t ? *t : WeightType{};
}

/// The error the registry reports for these parameters ("" if accepted).
inline std::string typeError(const std::string &mnemonic, const AttrDict &params) {
  schemes::registerAllSchemes();
  std::string err;
  auto t = WeightTypeRegistry::get().build(WeightTypeRegistry::get().lookup(mnemonic), params, err);
  return t ? std::string() : err;
}

/// A module with weight @w of type `t` whose parts are the experts' parts stacked along a new
/// leading dim (or the single expert's parts when t has no experts).
inline std::unique_ptr<Module> makeModule(const WeightType &t,
                                          const std::vector<std::vector<PartData>> &experts) {
  auto m = std::make_unique<Module>();
  auto w = std::make_unique<Weight>("w", t, Location{"test.qir", 1, 1});
  int64_t e = t.experts();
  for (size_t p = 0; p < experts.at(0).size(); ++p) {
    WeightPart part;
    part.name = experts[0][p].name;
    part.type = TensorType(experts[0][p].elem, experts[0][p].shape);
    if (e)
      part.type.dims.insert(part.type.dims.begin(), e);
    auto bytes = std::make_shared<std::vector<uint8_t>>();
    for (const auto &ex : experts)
      bytes->insert(bytes->end(), ex[p].bytes.begin(), ex[p].bytes.end());
    part.data = bytes;
    part.loc = Location{"test.qir", unsigned(2 + p), 3};
    w->parts().push_back(std::move(part));
  }
  m->addWeight(std::move(w));
  return m;
}

/// Every verifier message for the module (empty = it verifies).
inline std::vector<std::string> verifyMessages(const Module &m) {
  std::vector<std::string> msgs;
  DiagnosticEngine diag;
  diag.setHandler([&](const Diagnostic &d) { msgs.push_back(d.message); });
  bool ok = llvm::succeeded(verifyModule(m, diag));
  EXPECT_EQ(ok, msgs.empty());
  return msgs;
}

inline std::string joined(const std::vector<std::string> &v) {
  std::string s;
  for (const auto &x : v)
    s += x + "\n";
  return s;
}

/// The bytes of each part of expert `e` of weight `w` (the whole part when w has no experts):
/// parts of an expert stack are sliced along their leading dim.
inline PartBytesMap expertParts(const Weight &w, int64_t e) {
  PartBytesMap m;
  int64_t experts = w.experts();
  for (const WeightPart &p : w.parts()) {
    llvm::ArrayRef<uint8_t> all(*p.data);
    if (!experts) {
      m[p.name] = PartView{p.type.elem, all};
      continue;
    }
    size_t n = all.size() / size_t(experts);
    m[p.name] = PartView{p.type.elem, all.slice(size_t(e) * n, n)};
  }
  return m;
}

/// Runs the type's dequantize hook on expert e; returns its message ("" on success).
inline std::string runHook(const Weight &w, int64_t e, std::vector<float> &out) {
  const WeightType &t = w.quantType();
  std::vector<int64_t> s = t.def->logicalShape(t);
  out.assign(size_t(s[0] * s[1]), std::nanf(""));
  return t.def->dequantize(t, expertParts(w, e), out.data());
}

/// Bit-for-bit equality of two f32 arrays; reports the first difference.
inline ::testing::AssertionResult sameBits(const std::vector<float> &a,
                                           const std::vector<float> &b) {
  if (a.size() != b.size())
    return ::testing::AssertionFailure() << "sizes differ: " << a.size() << " vs " << b.size();
  for (size_t i = 0; i < a.size(); ++i)
    if (std::bit_cast<uint32_t>(a[i]) != std::bit_cast<uint32_t>(b[i]))
      return ::testing::AssertionFailure() << "element " << i << ": " << a[i] << " vs " << b[i];
  return ::testing::AssertionSuccess();
}

/// |orig − deq| <= bound elementwise; reports the first violation.
inline ::testing::AssertionResult withinBound(const std::vector<float> &orig,
                                              const std::vector<float> &deq,
                                              const std::vector<double> &bound) {
  for (size_t i = 0; i < orig.size(); ++i) {
    double err = std::fabs(double(orig[i]) - double(deq[i]));
    if (!(err <= bound[i]))
      return ::testing::AssertionFailure() << "element " << i << ": |" << orig[i] << " - "
                                           << deq[i] << "| = " << err << " > " << bound[i];
  }
  return ::testing::AssertionSuccess();
}

/// One expert's test data: its parts, the codec's own dequantization, the original f32 and the
/// per-element error bound.
struct ExpertCase {
  std::vector<PartData> parts;
  std::vector<float> codecOut;
  std::vector<float> orig;
  std::vector<double> bound;
};

/// A typed entry point (dequantizeAwq etc.): the scale part's element type given explicitly.
using TypedDequant =
    std::function<std::string(const WeightType &, const PartBytesMap &, float *)>;

/// Builds the module, verifies it, and for every expert: runs the hook (unless `hookOk` is false,
/// i.e. bf16 scales the byte-only hook cannot tell from f16) and the typed entry point (if given),
/// compares both with the codec's output bit for bit and with the original within the bound.
inline void checkRoundTrip(const WeightType &t, const std::vector<ExpertCase> &cases, bool hookOk,
                           const TypedDequant &typed = {}) {
  std::vector<std::vector<PartData>> parts;
  for (const auto &c : cases)
    parts.push_back(c.parts);
  auto m = makeModule(t, parts);
  auto msgs = verifyMessages(*m);
  ASSERT_TRUE(msgs.empty()) << t.str() << ":\n" << joined(msgs);
  const Weight &w = *m->weights().front();
  for (size_t e = 0; e < cases.size(); ++e) {
    SCOPED_TRACE(t.str() + " expert " + std::to_string(e));
    std::vector<float> out;
    if (hookOk) {
      ASSERT_EQ(runHook(w, int64_t(e), out), "");
      ASSERT_TRUE(sameBits(out, cases[e].codecOut));
      ASSERT_TRUE(withinBound(cases[e].orig, out, cases[e].bound));
    }
    if (typed) {
      out.assign(cases[e].codecOut.size(), std::nanf(""));
      ASSERT_EQ(typed(t, expertParts(w, int64_t(e)), out.data()), "");
      ASSERT_TRUE(sameBits(out, cases[e].codecOut));
      ASSERT_TRUE(withinBound(cases[e].orig, out, cases[e].bound));
    }
  }
}

/// Attribute-dict shorthands.
inline Attribute shapeAttr(int64_t n, int64_t k) { return Attribute(std::vector<int64_t>{n, k}); }
inline Attribute id(const char *s) { return Attribute::ident(s); }

} // namespace qlc::test
