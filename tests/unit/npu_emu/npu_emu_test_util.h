// Helpers of the npu-emu tests: !npu_w4 / !npu_w8 weights written directly (with or without offsets), running
// a function on the device and on the reference executor, and error measures.
#pragma once
#include <cmath>
#include <optional>

#include "runtime/npu_emu/npu_emu_executor.h"
#include "tests/unit/npu/npu_test_util.h"

namespace qlc::npu_emu_test {

using namespace qlc::npu_test;

/// A random !npu_w4 weight: any int4 codes, scales in [0.002, 0.05], offsets (when `offsets`)
/// small integers in [-7, 8] as npu-layout-rewrite writes them (8 − z).
inline std::string randomNpuW4Weight(std::mt19937 &rng, const std::string &name, int64_t n,
                                     int64_t k, int64_t g, int64_t experts,
                                     const std::string &paramElem, bool offsets) {
  const int64_t groups = g == -1 ? 1 : k / g, e = std::max<int64_t>(experts, 1);
  std::vector<uint32_t> codes(size_t(e * k * n / 8));
  for (uint32_t &w : codes)
    w = uint32_t(rng());
  std::vector<float> scale = randomValues(rng, size_t(e * groups * n), 0.002f, 0.05f), off;
  std::uniform_int_distribution<int> od(-7, 8);
  for (int64_t i = 0; i < e * groups * n; ++i)
    off.push_back(float(od(rng)));
  auto t = [&](std::vector<int64_t> d, const std::string &el) {
    if (experts)
      d.insert(d.begin(), experts);
    return "tensor<" + dims(d) + el + ">";
  };
  std::string s = "weight @" + name + " : !npu_w4<group = " + std::to_string(g) + ", shape = [" +
                  std::to_string(n) + ", " + std::to_string(k) + "]" +
                  (experts ? ", experts = " + std::to_string(experts) : "") + "> {\n" +
                  "  weight = " + t({k, n / 8}, "i32") + " = hex\"" + hexOf(codes) + "\",\n" +
                  "  antiquant_scale = " + t({groups, n}, paramElem) + " = hex\"" +
                  hexFloats(scale, paramElem) + "\"";
  if (offsets)
    s += ",\n  antiquant_offset = " + t({groups, n}, paramElem) + " = hex\"" +
         hexFloats(off, paramElem) + "\"";
  return s + "\n}\n";
}

/// A random !npu_w8 weight: any int8 codes [K, N], scales in [0.002, 0.05], offsets (when
/// `offsets`) integers in [−127, 128] as npu-layout-rewrite writes them (128 − z).
inline std::string randomNpuW8Weight(std::mt19937 &rng, const std::string &name, int64_t n,
                                     int64_t k, int64_t g, int64_t experts,
                                     const std::string &paramElem, bool offsets) {
  const int64_t groups = g == -1 ? 1 : k / g, e = std::max<int64_t>(experts, 1);
  std::vector<uint8_t> codes(size_t(e * k * n));
  for (uint8_t &c : codes)
    c = uint8_t(rng());
  std::vector<float> scale = randomValues(rng, size_t(e * groups * n), 0.002f, 0.05f), off;
  std::uniform_int_distribution<int> od(-127, 128);
  for (int64_t i = 0; i < e * groups * n; ++i)
    off.push_back(float(od(rng)));
  auto t = [&](std::vector<int64_t> d, const std::string &el) {
    if (experts)
      d.insert(d.begin(), experts);
    return "tensor<" + dims(d) + el + ">";
  };
  std::string s = "weight @" + name + " : !npu_w8<group = " + std::to_string(g) + ", shape = [" +
                  std::to_string(n) + ", " + std::to_string(k) + "]" +
                  (experts ? ", experts = " + std::to_string(experts) : "") + "> {\n" +
                  "  weight = " + t({k, n}, "i8") + " = hex\"" + hexOf(codes) + "\",\n" +
                  "  antiquant_scale = " + t({groups, n}, paramElem) + " = hex\"" +
                  hexFloats(scale, paramElem) + "\"";
  if (offsets)
    s += ",\n  antiquant_offset = " + t({groups, n}, paramElem) + " = hex\"" +
         hexFloats(off, paramElem) + "\"";
  return s + "\n}\n";
}

/// !npu_w4 (bits = 4) or !npu_w8 (bits = 8).
inline std::string randomNpuAntiquantWeight(int bits, std::mt19937 &rng, const std::string &name,
                                            int64_t n, int64_t k, int64_t g, int64_t experts,
                                            const std::string &paramElem, bool offsets) {
  return bits == 8 ? randomNpuW8Weight(rng, name, n, k, g, experts, paramElem, offsets)
                   : randomNpuW4Weight(rng, name, n, k, g, experts, paramElem, offsets);
}

/// Runs `fn` on a fresh NpuEmuExecutor; fails the test (and returns nullopt) on an error.
inline std::optional<std::vector<Tensor>> runDevice(const Module &m, const std::string &fn,
                                                    const std::vector<Tensor> &inputs,
                                                    const WeightStore *store = nullptr,
                                                    NpuEmuOptions opts = {}) {
  auto ex = NpuEmuExecutor::create(m, store, opts);
  if (!ex) {
    ADD_FAILURE() << llvm::toString(ex.takeError());
    return std::nullopt;
  }
  auto out = (*ex)->run(fn, inputs);
  if (!out) {
    ADD_FAILURE() << llvm::toString(out.takeError());
    return std::nullopt;
  }
  return std::move(*out);
}

inline std::optional<std::vector<Tensor>> runReference(const Module &m, const std::string &fn,
                                                       const std::vector<Tensor> &inputs,
                                                       const WeightStore *store = nullptr) {
  ReferenceExecutor ex(m, store);
  auto out = ex.run(fn, inputs);
  if (!out) {
    ADD_FAILURE() << llvm::toString(out.takeError());
    return std::nullopt;
  }
  return std::move(*out);
}

inline float maxAbs(const std::vector<float> &v) {
  float m = 0;
  for (float x : v)
    m = std::max(m, std::fabs(x));
  return m;
}

/// max |a − b| / max |b|: the error relative to the output's scale.
inline double relMaxError(const std::vector<float> &a, const std::vector<float> &b) {
  EXPECT_EQ(a.size(), b.size());
  double e = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i)
    e = std::max(e, double(std::fabs(a[i] - b[i])));
  double s = maxAbs(b);
  return s == 0 ? e : e / s;
}

} // namespace qlc::npu_emu_test
