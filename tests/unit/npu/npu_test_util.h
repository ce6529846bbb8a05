// Helpers of the npu unit tests: random checkpoint-layout weights written as inline-hex .qir text,
// parsing + verifying, running a pipeline, and running a function on the reference executor.
#pragma once
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include "ir/diagnostics.h"
#include "ir/op_registry.h"
#include "ir/parser.h"
#include "ir/verifier.h"
#include "passes/pass_manager.h"
#include "runtime/reference_executor.h"
#include "runtime/weight_store.h"
#include "schemes/all_schemes.h"
#include "support/float16.h"

namespace qlc::npu_test {

inline std::string hexBytes(const void *data, size_t n) {
  static const char d[] = "0123456789ABCDEF";
  std::string s;
  const auto *b = static_cast<const uint8_t *>(data);
  for (size_t i = 0; i < n; ++i) {
    s += d[b[i] >> 4];
    s += d[b[i] & 15];
  }
  return s;
}
template <typename T> std::string hexOf(const std::vector<T> &v) {
  return hexBytes(v.data(), v.size() * sizeof(T));
}

/// f32 values encoded as `elem` ("f16", "bf16", "f32"), as hex.
inline std::string hexFloats(const std::vector<float> &v, const std::string &elem) {
  if (elem == "f32")
    return hexOf(v);
  std::vector<uint16_t> h(v.size());
  for (size_t i = 0; i < v.size(); ++i)
    h[i] = elem == "bf16" ? floatToBf16(v[i]) : floatToHalf(v[i]);
  return hexOf(h);
}

inline std::string dims(const std::vector<int64_t> &d) {
  std::string s;
  for (int64_t x : d)
    s += std::to_string(x) + "x";
  return s;
}

/// A random !awq 4-bit weight (any code and zero nibbles, positive scales) as .qir text.
inline std::string randomAwqWeight(std::mt19937 &rng, const std::string &name, int64_t n, int64_t k,
                                   int64_t g, int64_t experts, const std::string &scaleElem) {
  int64_t gs = g == -1 ? k : g, e = std::max<int64_t>(experts, 1);
  std::vector<uint32_t> qw(size_t(e * k * n / 8)), qz(size_t(e * (k / gs) * n / 8));
  for (uint32_t &w : qw)
    w = uint32_t(rng());
  for (uint32_t &w : qz)
    w = uint32_t(rng());
  std::uniform_real_distribution<float> sd(0.002f, 0.05f);
  std::vector<float> sc(size_t(e * (k / gs) * n));
  for (float &s : sc)
    s = sd(rng);
  std::vector<int64_t> lead = experts ? std::vector<int64_t>{experts} : std::vector<int64_t>{};
  auto t = [&](std::vector<int64_t> d, const std::string &el) {
    d.insert(d.begin(), lead.begin(), lead.end());
    return "tensor<" + dims(d) + el + ">";
  };
  std::string params = "group = " + std::to_string(g) + ", shape = [" + std::to_string(n) + ", " +
                       std::to_string(k) + "]" +
                       (experts ? ", experts = " + std::to_string(experts) : "");
  return "weight @" + name + " : !awq<" + params + "> {\n  qweight = " + t({k, n / 8}, "i32") +
         " = hex\"" + hexOf(qw) + "\",\n  qzeros = " + t({k / gs, n / 8}, "i32") + " = hex\"" +
         hexOf(qz) + "\",\n  scales = " + t({k / gs, n}, scaleElem) + " = hex\"" +
         hexFloats(sc, scaleElem) + "\"\n}\n";
}

inline std::string denseWeight(std::mt19937 &rng, const std::string &name,
                               const std::vector<int64_t> &shape) {
  int64_t count = 1;
  for (int64_t d : shape)
    count *= d;
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  std::vector<float> v(static_cast<size_t>(count));
  for (float &x : v)
    x = dist(rng);
  std::string t = "tensor<" + dims(shape) + "f32>";
  return "weight @" + name + " : " + t + " { data = " + t + " = hex\"" + hexOf(v) + "\" }\n";
}

inline std::vector<float> randomValues(std::mt19937 &rng, size_t n, float lo = -1.f,
                                       float hi = 1.f) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float &x : v)
    x = dist(rng);
  return v;
}

/// Parses and verifies; the diagnostics text is appended to `errs`.
inline std::unique_ptr<Module> parse(const std::string &text, llvm::SourceMgr &sm,
                                     std::string *errs = nullptr) {
  registerCoreOps();
  registerGenericPasses();
  schemes::registerAllSchemes();
  std::string local;
  llvm::raw_string_ostream os(errs ? *errs : local);
  DiagnosticEngine diag(&sm);
  diag.setStream(&os);
  auto m = parseModuleString(text, "t.qir", sm, diag);
  if (m && llvm::failed(verifyModule(*m, diag)))
    m.reset();
  if (!errs) {
    EXPECT_TRUE(m) << local << "\n" << text;
  }
  return m;
}

/// Runs `pipeline` on `m` (verifying after each pass); returns the diagnostics, "" on success.
inline std::string runPipeline(Module &m, llvm::SourceMgr &sm, const std::string &pipeline) {
  std::string errs;
  llvm::raw_string_ostream os(errs);
  DiagnosticEngine diag(&sm);
  diag.setStream(&os);
  PassContext ctx{diag, {}};
  PassManager pm(ctx);
  std::string e = pm.addPipeline(pipeline);
  if (!e.empty())
    return e;
  if (llvm::failed(pm.run(m, &os)) && errs.empty())
    return "pipeline failed";
  return errs;
}

/// Runs `fn` on the reference executor; returns the first result as f32.
inline std::vector<float> run(const Module &m, const std::string &fn,
                              const std::vector<Tensor> &inputs) {
  ReferenceExecutor ex(m, nullptr);
  auto out = ex.run(fn, inputs);
  if (!out) {
    ADD_FAILURE() << llvm::toString(out.takeError());
    return {};
  }
  return (*out)[0].toF32();
}

} // namespace qlc::npu_test
