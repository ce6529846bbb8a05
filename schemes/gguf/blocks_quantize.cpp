// qlc's reference quantizers for the ggml block formats. Own design (not ggml's algorithm):
//  * legacy symmetric (Q4_0, Q5_0): d = (signed max-magnitude element) / c for a few c near the
//    two ends of the integer range.
//  * legacy affine (Q4_1, Q5_1): d = (max - min) / nmax, m = min.
//  * Q8_0 / Q8_1: d = amax / 127.   Q8_K: ggml's convention d = max / -127 (FORMATS.md §6.5).
//  * K-quants: the super-block d (and dmin) are set from the sub-blocks' min/max (affine types)
//    or signed max (symmetric types) so that every sub-block's natural scale fits the integer
//    scale field; then, per sub-block, a small local search over the integer scale (and min)
//    fields, using exactly the decoder's arithmetic (dl = d*sc, ml = dmin*m, y = dl*q - ml).
// Every search prefers candidates that clip no element (error <= half a step everywhere) and,
// among those, the least squared error weighted by (rms + |x|).
// All fp16 fields are rounded first and the integers are chosen against the rounded values.
// Precondition: finite inputs.
#include "schemes/gguf/blocks.h"

#include "schemes/gguf/blocks_internal.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace qlc::gguf {
using namespace detail;

namespace {

inline float roundHalf(float x) { return halfToFloat(floatToHalf(x)); }
inline int nearestInt(float x) { return int(std::lrint(std::clamp(x, -1e6f, 1e6f))); }
inline int clampi(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }

// Element of largest magnitude, with its sign (first one on ties).
float signedMax(const float* x, int n) {
  float best = 0.f, amax = 0.f;
  for (int i = 0; i < n; ++i)
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      best = x[i];
    }
  return best;
}

// A scale "covers" a block when no element is clipped: every x/step lies within half a step of
// the integer range, so every element's error is at most step/2. The searches below prefer
// covering candidates and, among those, the least weighted squared error; this keeps the largest
// error near step/2 (a pure squared-error choice tends to shrink the scale and clip the extreme).
struct Score {
  bool covers = false;
  float err = INFINITY;
  bool betterThan(const Score& o) const {
    return covers != o.covers ? covers : err < o.err;
  }
};
inline bool withinHalfStep(float t, int v) { return std::fabs(t - float(v)) <= 0.5f + 1e-4f; }

// Symmetric: q = clamp(round(x/d), qmin, qmax); returns the squared error of q*d (weighted by
// w[i] when w is given) and whether d covers the block.
Score symScore(const float* x, int n, float d, int qmin, int qmax, int* q,
               const float* w = nullptr) {
  Score s;
  s.covers = true;
  float err = 0.f;
  const float id = d != 0.f ? 1.f / d : 0.f;
  for (int i = 0; i < n; ++i) {
    const float t = x[i] * id;
    const int v = clampi(nearestInt(t), qmin, qmax);
    // A zero step covers only zeros.
    s.covers = s.covers && (d != 0.f ? withinHalfStep(t, v) : x[i] == 0.f);
    if (q)
      q[i] = v;
    const float e = float(v) * d - x[i];
    err += (w ? w[i] : 1.f) * e * e;
  }
  s.err = err;
  return s;
}

// Error weights for the scale searches: w = rms + |x|, so that the large-magnitude elements
// (which dominate both the max error and, typically, a layer's output) are reproduced more
// closely than a plain squared error would.
void importanceWeights(const float* x, int n, float* w) {
  float ss = 0.f;
  for (int i = 0; i < n; ++i)
    ss += x[i] * x[i];
  const float rms = std::sqrt(ss / float(n));
  for (int i = 0; i < n; ++i)
    w[i] = rms + std::fabs(x[i]);
}

// ---- legacy symmetric: Q4_0 (qmin=-8, qmax=7), Q5_0 (-16, 15). Returns fp16 d, fills q. ----
float chooseLegacySym(const float* x, int qmin, int qmax, int* q) {
  const float mx = signedMax(x, kQK);
  if (mx == 0.f) {
    std::fill(q, q + kQK, 0);
    return 0.f;
  }
  float w[kQK];
  importanceWeights(x, kQK, w);
  float bestD = 0.f;
  Score best;
  // c: the integer the extreme element maps to. Negative c uses the longer negative side.
  for (int k = 0; k <= 8; ++k) {
    for (float c : {float(qmin) + 0.25f * k, float(qmax) - 0.25f * k}) {
      const float d = roundHalf(mx / c);
      if (d == 0.f || !std::isfinite(d))
        continue;
      const Score sc = symScore(x, kQK, d, qmin, qmax, nullptr, w);
      if (sc.betterThan(best)) {
        best = sc;
        bestD = d;
      }
    }
  }
  symScore(x, kQK, bestD, qmin, qmax, q);
  return bestD;
}

void quantQ4_0(const float* x, uint8_t* b) {
  int q[kQK];
  const float d = chooseLegacySym(x, -8, 7, q);
  storeU16(b, floatToHalf(d));
  for (int j = 0; j < 16; ++j)
    b[2 + j] = uint8_t((q[j] + 8) | ((q[j + 16] + 8) << 4));
}

void quantQ5_0(const float* x, uint8_t* b) {
  int q[kQK];
  const float d = chooseLegacySym(x, -16, 15, q);
  storeU16(b, floatToHalf(d));
  uint32_t qh = 0;
  for (int i = 0; i < kQK; ++i)
    qh |= uint32_t((q[i] + 16) >> 4) << i;
  storeU32(b + 2, qh);
  for (int j = 0; j < 16; ++j)
    b[6 + j] = uint8_t(((q[j] + 16) & 0xF) | (((q[j + 16] + 16) & 0xF) << 4));
}

// ---- legacy affine: y = q*d + m, q in [0, nmax] ----
void chooseLegacyAffine(const float* x, int nmax, float* dOut, float* mOut, int* q) {
  float lo = x[0], hi = x[0];
  for (int i = 1; i < kQK; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  const float m = roundHalf(lo);
  const float d = roundHalf((hi - lo) / nmax);
  const float id = d != 0.f ? 1.f / d : 0.f;
  for (int i = 0; i < kQK; ++i)
    q[i] = clampi(nearestInt((x[i] - m) * id), 0, nmax);
  *dOut = d;
  *mOut = m;
}

void quantQ4_1(const float* x, uint8_t* b) {
  int q[kQK];
  float d, m;
  chooseLegacyAffine(x, 15, &d, &m, q);
  storeU16(b, floatToHalf(d));
  storeU16(b + 2, floatToHalf(m));
  for (int j = 0; j < 16; ++j)
    b[4 + j] = uint8_t(q[j] | (q[j + 16] << 4));
}

void quantQ5_1(const float* x, uint8_t* b) {
  int q[kQK];
  float d, m;
  chooseLegacyAffine(x, 31, &d, &m, q);
  storeU16(b, floatToHalf(d));
  storeU16(b + 2, floatToHalf(m));
  uint32_t qh = 0;
  for (int i = 0; i < kQK; ++i)
    qh |= uint32_t(q[i] >> 4) << i;
  storeU32(b + 4, qh);
  for (int j = 0; j < 16; ++j)
    b[8 + j] = uint8_t((q[j] & 0xF) | ((q[j + 16] & 0xF) << 4));
}

// ---- 8-bit ----
void quantQ8_0(const float* x, uint8_t* b) {
  const float d = roundHalf(std::fabs(signedMax(x, kQK)) / 127.f);
  int q[kQK];
  symScore(x, kQK, d, -127, 127, q);
  storeU16(b, floatToHalf(d));
  for (int i = 0; i < kQK; ++i)
    b[2 + i] = uint8_t(int8_t(q[i]));
}

void quantQ8_1(const float* x, uint8_t* b) {
  const float d = roundHalf(std::fabs(signedMax(x, kQK)) / 127.f);
  int q[kQK];
  symScore(x, kQK, d, -127, 127, q);
  int sum = 0;
  for (int i = 0; i < kQK; ++i) {
    b[4 + i] = uint8_t(int8_t(q[i]));
    sum += q[i];
  }
  storeU16(b, floatToHalf(d));
  storeU16(b + 2, floatToHalf(float(sum) * d));
}

void quantQ8_K(const float* x, uint8_t* b) {
  const float mx = signedMax(x, kQK_K);
  int8_t* qs = reinterpret_cast<int8_t*>(b + 4);
  if (mx == 0.f) {
    std::memset(b, 0, 292);
    return;
  }
  const float iscale = -127.f / mx;
  for (int i = 0; i < kQK_K; ++i)
    qs[i] = int8_t(std::min(127, nearestInt(iscale * x[i])));
  storeF32(b, 1.f / iscale);
  for (int j = 0; j < 16; ++j) {
    int s = 0;
    for (int i = 0; i < 16; ++i)
      s += qs[16 * j + i];
    storeU16(b + 260 + 2 * j, uint16_t(int16_t(s)));
  }
}

// ---- K-quant helpers ----


// Affine sub-block fit: y = (d*sc)*q - dmin*m, q in [0,nmax], sc in [0,scMax], m in [0,mMax].
// Searches sc in [scLo, scHi] and m in [m0-2, m0+2]; writes the best sc, m, q.
void fitAffineSub(const float* x, int n, int nmax, float d, float dmin, int scMax, int mMax,
                  int scLo, int scHi, int m0, int* scOut, int* mOut, int* q) {
  float w[32];
  importanceWeights(x, n, w);
  Score best;
  int bestSc = 0, bestM = 0;
  for (int sc = std::max(0, scLo); sc <= std::min(scMax, scHi); ++sc) {
    for (int m = std::max(0, m0 - 2); m <= std::min(mMax, m0 + 2); ++m) {
      const float dl = d * float(sc), ml = dmin * float(m);
      const float idl = dl != 0.f ? 1.f / dl : 0.f;
      Score score;
      score.covers = true;
      float err = 0.f;
      for (int i = 0; i < n; ++i) {
        const float t = (x[i] + ml) * idl;
        const int v = clampi(nearestInt(t), 0, nmax);
        score.covers = score.covers && (dl != 0.f ? withinHalfStep(t, v) : x[i] + ml == 0.f);
        const float e = dl * float(v) - ml - x[i];
        err += w[i] * e * e;
      }
      score.err = err;
      if (score.betterThan(best)) {
        best = score;
        bestSc = sc;
        bestM = m;
      }
    }
  }
  const float dl = d * float(bestSc), ml = dmin * float(bestM);
  const float idl = dl != 0.f ? 1.f / dl : 0.f;
  for (int i = 0; i < n; ++i)
    q[i] = clampi(nearestInt((x[i] + ml) * idl), 0, nmax);
  *scOut = bestSc;
  *mOut = bestM;
}

// Affine K-quant super-block: nsub sub-blocks of len elements.
// Per sub-block: lo = min(min x, 0) (the stored min m >= 0 is subtracted), hi = max x.
// dmin maps the largest -lo onto mMax; d is chosen so that even the widest sub-block, with its
// min rounded up to a multiple of dmin, fits with sc <= scMax (so a covering choice exists).
void quantKAffine(const float* x, int nsub, int len, int nmax, int scMax, int mMax, int scR,
                  float* dOut, float* dminOut, int* sc, int* mn, int* q) {
  float lo[16], hi[16];
  float mMaxVal = 0.f;
  for (int j = 0; j < nsub; ++j) {
    lo[j] = 0.f;
    hi[j] = x[j * len];
    for (int i = 0; i < len; ++i) {
      lo[j] = std::min(lo[j], x[j * len + i]);
      hi[j] = std::max(hi[j], x[j * len + i]);
    }
    mMaxVal = std::max(mMaxVal, -lo[j]);
  }
  const float dmin = roundHalf(mMaxVal / float(mMax));
  float need[16], needMax = 0.f;
  for (int j = 0; j < nsub; ++j) {
    const float ml = dmin != 0.f ? dmin * std::min(float(mMax), std::ceil(-lo[j] / dmin)) : 0.f;
    need[j] = std::max(0.f, (hi[j] + ml) / float(nmax)); // step that reaches hi from -ml
    needMax = std::max(needMax, need[j]);
  }
  const float d = roundHalf(needMax / float(scMax) * (1.f + 1.f / 1024.f));
  for (int j = 0; j < nsub; ++j) {
    const float s0 = (hi[j] - lo[j]) / float(nmax); // plain min/max step
    int scLo = 0, scHi = 0;
    if (d != 0.f) {
      scLo = nearestInt(s0 / d) - scR;
      scHi = std::max(nearestInt(s0 / d) + scR, int(std::ceil(need[j] / d)) + 1);
    }
    const int m0 = dmin != 0.f ? clampi(nearestInt(-lo[j] / dmin), 0, mMax) : 0;
    fitAffineSub(x + j * len, len, nmax, d, dmin, scMax, mMax, scLo, scHi, m0, &sc[j], &mn[j],
                 q + j * len);
  }
  *dOut = d;
  *dminOut = dmin;
}

// Symmetric K-quant super-block: y = (d*sc)*q, q in [qmin,qmax] (qmin = -qmax-1), sc in
// [-scMax-1, scMax]. The extreme of a sub-block can map to qmin (finest step) or, with the
// opposite sign of sc, to qmax (always covers the block). d > 0 is chosen so that the qmax
// mapping of the largest sub-block still fits in |sc| <= scMax; sc within +-2 of either mapping
// is tried.
float quantKSym(const float* x, int nsub, int len, int qmin, int qmax, int scMax, int* sc,
                int* q) {
  float bigStep = 0.f;
  for (int j = 0; j < nsub; ++j)
    bigStep = std::max(bigStep, std::fabs(signedMax(x + j * len, len)) / float(qmax));
  const float d = roundHalf(bigStep / float(scMax));
  for (int j = 0; j < nsub; ++j) {
    const float* xs = x + j * len;
    if (d == 0.f) {
      sc[j] = 0;
      std::fill(q + j * len, q + (j + 1) * len, 0);
      continue;
    }
    const float mx = signedMax(xs, len);
    const int a = nearestInt(mx / float(qmin) / d), bnd = nearestInt(mx / float(qmax) / d);
    float w[32];
    importanceWeights(xs, len, w);
    Score bestScore;
    int best = 0;
    for (int center : {a, bnd}) {
      const int lo = clampi(center - 2, -scMax - 1, scMax);
      const int hi = clampi(center + 2, -scMax - 1, scMax);
      for (int c = lo; c <= hi; ++c) {
        const Score score = symScore(xs, len, d * float(c), qmin, qmax, nullptr, w);
        if (score.betterThan(bestScore)) {
          bestScore = score;
          best = c;
        }
      }
    }
    sc[j] = best;
    symScore(xs, len, d * float(best), qmin, qmax, q + j * len);
  }
  return d;
}

// Q2_K: scales[16] @0 (sc | m<<4), qs[64] @16, d @80, dmin @82.
void quantQ2_K(const float* x, uint8_t* b) {
  int sc[16], mn[16], q[kQK_K];
  float d, dmin;
  quantKAffine(x, 16, 16, 3, 15, 15, 3, &d, &dmin, sc, mn, q);
  std::memset(b, 0, 84);
  for (int j = 0; j < 16; ++j)
    b[j] = uint8_t(sc[j] | (mn[j] << 4));
  for (int i = 0; i < kQK_K; ++i) {
    const int h = i / 128, j = (i % 128) / 32, l = i % 32;
    b[16 + 32 * h + l] |= uint8_t(q[i] << (2 * j));
  }
  storeU16(b + 80, floatToHalf(d));
  storeU16(b + 82, floatToHalf(dmin));
}

// Q3_K: hmask[32] @0, qs[64] @32, scales[12] @96, d @108.
void quantQ3_K(const float* x, uint8_t* b) {
  int sc[16], q[kQK_K];
  const float d = quantKSym(x, 16, 16, -4, 3, 31, sc, q);
  std::memset(b, 0, 110);
  for (int i = 0; i < kQK_K; ++i) {
    const int h = i / 128, j = (i % 128) / 32, l = i % 32;
    const int u = q[i] + 4; // 0..7: low 2 bits in qs, bit 2 in hmask (set means q >= 0)
    b[32 + 32 * h + l] |= uint8_t((u & 3) << (2 * j));
    b[l] |= uint8_t((u >> 2) << (4 * h + j));
  }
  uint8_t* s = b + 96;
  for (int k = 0; k < 16; ++k) {
    const int v = sc[k] + 32; // 0..63
    const int t = k % 4, g = k / 4;
    const int lowByte = (g == 0 || g == 2) ? t : 4 + t;
    const int lowShift = (g < 2) ? 0 : 4;
    s[lowByte] |= uint8_t((v & 0xF) << lowShift);
    s[8 + t] |= uint8_t((v >> 4) << (2 * g));
  }
  storeU16(b + 108, floatToHalf(d));
}

// Packs 8 (sc, m) 6-bit pairs into the 12-byte Q4_K/Q5_K scales field.
void packScalesK4(const int* sc, const int* mn, uint8_t* s) {
  std::memset(s, 0, 12);
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      s[j] |= uint8_t(sc[j]);
      s[j + 4] |= uint8_t(mn[j]);
    } else {
      s[j + 4] = uint8_t((sc[j] & 0xF) | ((mn[j] & 0xF) << 4));
      s[j - 4] |= uint8_t((sc[j] >> 4) << 6);
      s[j] |= uint8_t((mn[j] >> 4) << 6);
    }
  }
}

// Q4_K: d @0, dmin @2, scales @4, qs[128] @16.
void quantQ4_K(const float* x, uint8_t* b) {
  int sc[8], mn[8], q[kQK_K];
  float d, dmin;
  quantKAffine(x, 8, 32, 15, 63, 63, 3, &d, &dmin, sc, mn, q);
  std::memset(b, 0, 144);
  storeU16(b, floatToHalf(d));
  storeU16(b + 2, floatToHalf(dmin));
  packScalesK4(sc, mn, b + 4);
  for (int i = 0; i < kQK_K; ++i) {
    const int c = i / 64, hi = (i % 64) / 32, l = i % 32;
    b[16 + 32 * c + l] |= uint8_t(q[i] << (4 * hi));
  }
}

// Q5_K: d @0, dmin @2, scales @4, qh[32] @16, qs[128] @48.
void quantQ5_K(const float* x, uint8_t* b) {
  int sc[8], mn[8], q[kQK_K];
  float d, dmin;
  quantKAffine(x, 8, 32, 31, 63, 63, 3, &d, &dmin, sc, mn, q);
  std::memset(b, 0, 176);
  storeU16(b, floatToHalf(d));
  storeU16(b + 2, floatToHalf(dmin));
  packScalesK4(sc, mn, b + 4);
  for (int i = 0; i < kQK_K; ++i) {
    const int c = i / 64, hi = (i % 64) / 32, l = i % 32;
    b[48 + 32 * c + l] |= uint8_t((q[i] & 0xF) << (4 * hi));
    b[16 + l] |= uint8_t((q[i] >> 4) << (i / 32));
  }
}

// Q6_K: ql[128] @0, qh[64] @128, scales[16] (int8) @192, d @208.
void quantQ6_K(const float* x, uint8_t* b) {
  int sc[16], q[kQK_K];
  const float d = quantKSym(x, 16, 16, -32, 31, 127, sc, q);
  std::memset(b, 0, 210);
  for (int i = 0; i < kQK_K; ++i) {
    const int h = i / 128, quad = (i % 128) / 32, l = i % 32;
    const int u = q[i] + 32; // 0..63
    b[64 * h + l + 32 * (quad & 1)] |= uint8_t((u & 0xF) << (4 * (quad >> 1)));
    b[128 + 32 * h + l] |= uint8_t((u >> 4) << (2 * quad));
  }
  for (int j = 0; j < 16; ++j)
    b[192 + j] = uint8_t(int8_t(sc[j]));
  storeU16(b + 208, floatToHalf(d));
}

} // namespace

void quantizeRow(uint32_t t, const float* src, uint8_t* dst, int64_t n) {
  const int64_t blck = blockElements(t), bytes = blockBytes(t);
  if (blck == 0)
    return;
  void (*fn)(const float*, uint8_t*) = nullptr;
  switch (t) {
  case kF32:
    for (int64_t i = 0; i < n; ++i)
      storeF32(dst + 4 * i, src[i]);
    return;
  case kF16:
    for (int64_t i = 0; i < n; ++i)
      storeU16(dst + 2 * i, floatToHalf(src[i]));
    return;
  case kBF16:
    for (int64_t i = 0; i < n; ++i)
      storeU16(dst + 2 * i, floatToBf16(src[i]));
    return;
  case kQ4_0: fn = quantQ4_0; break;
  case kQ4_1: fn = quantQ4_1; break;
  case kQ5_0: fn = quantQ5_0; break;
  case kQ5_1: fn = quantQ5_1; break;
  case kQ8_0: fn = quantQ8_0; break;
  case kQ8_1: fn = quantQ8_1; break;
  case kQ2_K: fn = quantQ2_K; break;
  case kQ3_K: fn = quantQ3_K; break;
  case kQ4_K: fn = quantQ4_K; break;
  case kQ5_K: fn = quantQ5_K; break;
  case kQ6_K: fn = quantQ6_K; break;
  case kQ8_K: fn = quantQ8_K; break;
  default: return;
  }
  const int64_t nb = n / blck;
  for (int64_t i = 0; i < nb; ++i)
    fn(src + i * blck, dst + i * bytes);
}

} // namespace qlc::gguf
