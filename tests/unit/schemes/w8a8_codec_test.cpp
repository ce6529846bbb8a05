// vllm-ascend W8A8_DYNAMIC codec tests (FORMATS.md §5.4).
#include "schemes/w8a8/codec.h"
#include "codec_test_util.h"

#include <gtest/gtest.h>

#include <cmath>

using namespace qlc;

TEST(W8a8Codec, PerTokenQuantHandVectorAndTieRule) {
  // max|x| = 127 -> scale 1; ties round half to even: -63.5 -> -64, 0.5 -> 0, 1.5 -> 2, 2.5 -> 2.
  std::vector<float> x = {127.f, -63.5f, 0.5f, 1.5f, 2.5f, -127.f,
                          /* token 2 */ 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
  auto r = w8a8::quantizePerToken(x, 2, 6);
  EXPECT_EQ(r.scale[0], 1.f);
  EXPECT_EQ(r.q, (std::vector<int8_t>{127, -64, 0, 2, 2, -127, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(r.scale[1], 0.f); // all-zero token: scale 0, codes 0
}

TEST(W8a8Codec, PerTokenQuantErrorAndRange) {
  const int64_t M = 16, K = 300;
  auto x = test::randomWeights(M * K, 4, -3.f, 5.f);
  auto r = w8a8::quantizePerToken(x, M, K);
  for (int64_t m = 0; m < M; ++m) {
    float amax = 0;
    for (int64_t k = 0; k < K; ++k)
      amax = std::max(amax, std::fabs(x[m * K + k]));
    EXPECT_EQ(r.scale[m], amax / 127.f);
    bool hitsEnd = false;
    for (int64_t k = 0; k < K; ++k) {
      int q = r.q[m * K + k];
      ASSERT_GE(q, -127);
      ASSERT_LE(q, 127);
      hitsEnd |= std::abs(q) == 127;
      // |x − q·s| <= s/2 (+ f32 slack on x/s ~ 127·2^-24 steps)
      ASSERT_LE(std::fabs(double(x[m * K + k]) - double(q) * r.scale[m]),
                r.scale[m] * (0.5 + 1e-5));
    }
    EXPECT_TRUE(hitsEnd); // the max element maps to ±127
  }
}

TEST(W8a8Codec, WeightQuantizeDequantize) {
  const int64_t K = 128, N = 40;
  auto w = test::randomWeights(N * K, 21, -0.3f, 0.2f);
  for (int64_t k = 0; k < K; ++k)
    w[7 * K + k] = 0.f; // an all-zero channel
  auto ck = w8a8::quantize(w, K, N);
  ASSERT_EQ(ck.weight.size(), size_t(N * K));
  EXPECT_EQ(ck.weightOffset, std::vector<float>(N, 0.f));
  EXPECT_EQ(w8a8::offsetWarning(ck.weightOffset), std::nullopt);
  EXPECT_EQ(ck.weightScale[7], 1.f);
  std::vector<float> out(N * K);
  w8a8::dequantize(ck.weight, ck.weightScale, K, N, out);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k) {
      ASSERT_GE(ck.weight[n * K + k], -127);
      ASSERT_EQ(out[n * K + k], float(ck.weight[n * K + k]) * ck.weightScale[n]); // exact
      ASSERT_LE(std::fabs(double(w[n * K + k]) - out[n * K + k]),
                ck.weightScale[n] * (0.5 + 1e-5));
    }
}

TEST(W8a8Codec, DequantizeIgnoresOffset) {
  // §5.4: weight_offset is unused by the dynamic matmul, so the reference ignores it as well.
  std::vector<int8_t> w = {10, -20, 30, -128};
  std::vector<float> scale = {0.5f, 0.25f}, out(4);
  w8a8::dequantize(w, scale, 2, 2, out);
  EXPECT_EQ(out, (std::vector<float>{5.f, -10.f, 7.5f, -32.f}));
  std::vector<float> offset = {0.f, 3.f};
  EXPECT_EQ(w8a8::offsetWarning(offset),
            "weight_offset[1] = 3.000000 is not 0, but W8A8_DYNAMIC ignores offsets (symmetric "
            "weights)");
}

TEST(W8a8Codec, MatmulMatchesFloatFromDequantizedOperands) {
  const int64_t M = 7, K = 520, N = 33;
  auto x = test::randomWeights(M * K, 31, -4.f, 4.f);
  auto wf = test::randomWeights(N * K, 32, -0.5f, 0.5f);
  auto bias = test::randomWeights(N, 33);
  auto xq = w8a8::quantizePerToken(x, M, K);
  auto ck = w8a8::quantize(wf, K, N);
  auto y = w8a8::matmul(xq.q, xq.scale, ck.weight, ck.weightScale, bias, M, K, N);
  auto yNoBias = w8a8::matmul(xq.q, xq.scale, ck.weight, ck.weightScale, {}, M, K, N);

  std::vector<float> wd(N * K);
  w8a8::dequantize(ck.weight, ck.weightScale, K, N, wd);
  // Tolerance: xd = fl(xq·s_tok) and wd = fl(w·s_w) each carry relative error <= 2^-24, so each
  // product differs from the exact s_tok·s_w·xq·w by <= 2^-23 relative (+2^-48); the double sum
  // adds <= K·2^-53 relative to Σ|xd·wd| =: S; the codec's result is the exact value rounded to
  // f32 once (<= 2^-24 |y|, plus the same for the bias add). Hence
  // |y − ref| <= (2^-22 + K·2^-52)·S + 2^-23·(|ref| + |bias|).
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double ref = 0, S = 0;
      for (int64_t k = 0; k < K; ++k) {
        float xd = float(xq.q[m * K + k]) * xq.scale[m];
        double p = double(xd) * double(wd[n * K + k]);
        ref += p;
        S += std::fabs(p);
      }
      double tol = (std::ldexp(1.0, -22) + K * std::ldexp(1.0, -52)) * S +
                   std::ldexp(1.0, -23) * (std::fabs(ref) + std::fabs(bias[n]));
      ASSERT_NEAR(yNoBias[m * N + n], ref, tol) << m << "," << n;
      ASSERT_NEAR(y[m * N + n], ref + bias[n], tol) << m << "," << n;
    }
}

TEST(W8a8Codec, IntAccumulationIsExact) {
  // Exact against an int64 sum on random data ...
  const int64_t M = 3, K = 4099, N = 5;
  std::vector<int8_t> xq(M * K), w(N * K);
  auto a = test::randomSigned(M * K, 8, 41), b = test::randomSigned(N * K, 8, 42);
  for (size_t i = 0; i < xq.size(); ++i)
    xq[i] = std::max<int8_t>(a[i], -127); // activations are clamped to [-127, 127]
  w = b;
  auto acc = w8a8::accumulate(xq, w, M, K, N);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      int64_t s = 0;
      for (int64_t k = 0; k < K; ++k)
        s += int64_t(xq[m * K + k]) * w[n * K + k];
      ASSERT_EQ(int64_t(acc[m * N + n]), s);
    }
  // ... and at the largest K the validator accepts, with the worst-case products 127 * -128.
  const int64_t Kmax = w8a8::kMaxExactK;
  EXPECT_EQ(w8a8::validate(Kmax, 1), std::nullopt);
  std::vector<int8_t> xs(Kmax, 127), ws(Kmax, -128);
  auto worst = w8a8::accumulate(xs, ws, 1, Kmax, 1);
  EXPECT_EQ(int64_t(worst[0]), -int64_t(127) * 128 * Kmax);
  EXPECT_GE(int64_t(worst[0]), int64_t(INT32_MIN));
  // Near-worst case whose partial sums are odd numbers around 2^31 (not representable in f32 or
  // in any accumulator narrower than 32 bits): weights alternate -128 / -127.
  int64_t expect = 0;
  for (int64_t k = 0; k < Kmax; ++k) {
    ws[k] = int8_t(k % 2 ? -127 : -128);
    expect += 127 * int64_t(ws[k]);
  }
  EXPECT_EQ(int64_t(w8a8::accumulate(xs, ws, 1, Kmax, 1)[0]), expect);
  EXPECT_LT(int64_t(127) * 128 * (Kmax + 1), int64_t(INT32_MAX) + 1 + 127 * 128); // sanity
  EXPECT_GT(int64_t(127) * 128 * (Kmax + 1), int64_t(INT32_MAX));                 // tight
}

TEST(W8a8Codec, Validators) {
  EXPECT_EQ(w8a8::validate(w8a8::kMaxExactK + 1, 8),
            "K = 132105 exceeds 132104: the int32 accumulation of 127*128 per product could "
            "overflow");
  EXPECT_EQ(w8a8::validate(0, 8), "W8A8 Linear needs positive K and N, got K = 0, N = 8");
  const int64_t w[] = {64, 128}, s[] = {64, 1}, o[] = {64, 1}, badS[] = {128, 1};
  EXPECT_EQ(w8a8::validateShapes(w, s, o, 128, 64), std::nullopt);
  EXPECT_EQ(w8a8::validateShapes(w, badS, o, 128, 64),
            "weight_scale has shape [128, 1], expected [64, 1] (one scale per output channel)");
  const int64_t wT[] = {128, 64};
  EXPECT_EQ(w8a8::validateShapes(wT, s, o, 128, 64),
            "weight has shape [128, 64], expected [64, 128] (W8A8 weight is [N, K] int8)");
}
