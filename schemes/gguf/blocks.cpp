// Type table and reference dequantizers for the ggml block formats (FORMATS.md §6.4/§6.5).
// Each dequantizer mirrors the loop structure of ggml's scalar `dequantize_row_*` so that the fp32
// evaluation order (and therefore every rounding) is the same as ggml's reference:
//   legacy: (q - off) * d, or q * d + m;  K-quants: dl = d*sc, ml = dmin*m, then dl*q - ml;
//   Q3_K: (d*(S-32)) * q;  Q6_K: (d*sc) * q.
#include "schemes/gguf/blocks.h"

#include "schemes/gguf/blocks_internal.h"

#include <cstring>

namespace qlc::gguf {
using namespace detail;

bool hasBlockCodec(uint32_t t) { return blockElements(t) != 0; }

int64_t blockElements(uint32_t t) {
  switch (t) {
  case kF32:
  case kF16:
  case kBF16:
    return 1;
  case kQ4_0:
  case kQ4_1:
  case kQ5_0:
  case kQ5_1:
  case kQ8_0:
  case kQ8_1:
    return kQK;
  case kQ2_K:
  case kQ3_K:
  case kQ4_K:
  case kQ5_K:
  case kQ6_K:
  case kQ8_K:
    return kQK_K;
  default:
    return 0;
  }
}

int64_t blockBytes(uint32_t t) {
  switch (t) {
  case kF32: return 4;
  case kF16: return 2;
  case kBF16: return 2;
  case kQ4_0: return 18;
  case kQ4_1: return 20;
  case kQ5_0: return 22;
  case kQ5_1: return 24;
  case kQ8_0: return 34;
  case kQ8_1: return 36;
  case kQ2_K: return 84;
  case kQ3_K: return 110;
  case kQ4_K: return 144;
  case kQ5_K: return 176;
  case kQ6_K: return 210;
  case kQ8_K: return 292;
  default: return 0;
  }
}

std::vector<int> halfFieldOffsets(uint32_t t) {
  switch (t) {
  case kQ4_0:
  case kQ5_0:
  case kQ8_0: return {0};
  case kQ4_1:
  case kQ5_1:
  case kQ8_1:
  case kQ4_K:
  case kQ5_K: return {0, 2};
  case kQ2_K: return {80, 82};
  case kQ3_K: return {108};
  case kQ6_K: return {208};
  default: return {};
  }
}

namespace {

void deqQ4_0(const uint8_t* b, float* y) {
  const float d = loadHalf(b);
  const uint8_t* qs = b + 2;
  for (int j = 0; j < kQK / 2; ++j) {
    const int x0 = (qs[j] & 0x0F) - 8;
    const int x1 = (qs[j] >> 4) - 8;
    y[j] = x0 * d;
    y[j + kQK / 2] = x1 * d;
  }
}

void deqQ4_1(const uint8_t* b, float* y) {
  const float d = loadHalf(b);
  const float m = loadHalf(b + 2);
  const uint8_t* qs = b + 4;
  for (int j = 0; j < kQK / 2; ++j) {
    const int x0 = qs[j] & 0x0F;
    const int x1 = qs[j] >> 4;
    y[j] = x0 * d + m;
    y[j + kQK / 2] = x1 * d + m;
  }
}

void deqQ5_0(const uint8_t* b, float* y) {
  const float d = loadHalf(b);
  const uint32_t qh = loadU32(b + 2);
  const uint8_t* qs = b + 6;
  for (int j = 0; j < kQK / 2; ++j) {
    const uint8_t xh0 = uint8_t(((qh >> (j + 0)) << 4) & 0x10);
    const uint8_t xh1 = uint8_t((qh >> (j + 12)) & 0x10);
    const int32_t x0 = ((qs[j] & 0x0F) | xh0) - 16;
    const int32_t x1 = ((qs[j] >> 4) | xh1) - 16;
    y[j] = x0 * d;
    y[j + kQK / 2] = x1 * d;
  }
}

void deqQ5_1(const uint8_t* b, float* y) {
  const float d = loadHalf(b);
  const float m = loadHalf(b + 2);
  const uint32_t qh = loadU32(b + 4);
  const uint8_t* qs = b + 8;
  for (int j = 0; j < kQK / 2; ++j) {
    const uint8_t xh0 = uint8_t(((qh >> (j + 0)) << 4) & 0x10);
    const uint8_t xh1 = uint8_t((qh >> (j + 12)) & 0x10);
    const int x0 = (qs[j] & 0x0F) | xh0;
    const int x1 = (qs[j] >> 4) | xh1;
    y[j] = x0 * d + m;
    y[j + kQK / 2] = x1 * d + m;
  }
}

void deqQ8_0(const uint8_t* b, float* y) {
  const float d = loadHalf(b);
  const int8_t* qs = reinterpret_cast<const int8_t*>(b + 2);
  for (int j = 0; j < kQK; ++j)
    y[j] = qs[j] * d;
}

void deqQ8_1(const uint8_t* b, float* y) {
  const float d = loadHalf(b); // b+2 holds s = d*sum(qs), not needed to dequantize
  const int8_t* qs = reinterpret_cast<const int8_t*>(b + 4);
  for (int j = 0; j < kQK; ++j)
    y[j] = qs[j] * d;
}

// Q2_K: scales[16] @0, qs[64] @16, d @80, dmin @82.
void deqQ2_K(const uint8_t* b, float* y) {
  const uint8_t* scales = b;
  const uint8_t* q = b + 16;
  const float d = loadHalf(b + 80);
  const float min = loadHalf(b + 82);
  int is = 0;
  for (int n = 0; n < kQK_K; n += 128) {
    int shift = 0;
    for (int j = 0; j < 4; ++j) {
      uint8_t sc = scales[is++];
      float dl = d * (sc & 0xF), ml = min * (sc >> 4);
      for (int l = 0; l < 16; ++l)
        *y++ = dl * int8_t((q[l] >> shift) & 3) - ml;
      sc = scales[is++];
      dl = d * (sc & 0xF), ml = min * (sc >> 4);
      for (int l = 0; l < 16; ++l)
        *y++ = dl * int8_t((q[l + 16] >> shift) & 3) - ml;
      shift += 2;
    }
    q += 32;
  }
}

// Q3_K: hmask[32] @0, qs[64] @32, scales[12] @96, d @108.
void deqQ3_K(const uint8_t* b, float* y) {
  constexpr uint32_t kmask1 = 0x03030303, kmask2 = 0x0f0f0f0f;
  const uint8_t* hm = b;
  const uint8_t* q = b + 32;
  const float dAll = loadHalf(b + 108);
  uint32_t aux[4];
  aux[0] = loadU32(b + 96);
  aux[1] = loadU32(b + 100);
  aux[2] = loadU32(b + 104);
  const uint32_t tmp = aux[2];
  aux[2] = ((aux[0] >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4);
  aux[3] = ((aux[1] >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4);
  aux[0] = (aux[0] & kmask2) | (((tmp >> 0) & kmask1) << 4);
  aux[1] = (aux[1] & kmask2) | (((tmp >> 2) & kmask1) << 4);
  int8_t scales[16]; // byte k of aux[w] (little-endian) is scale 4w+k
  for (int w = 0; w < 4; ++w)
    for (int k = 0; k < 4; ++k)
      scales[4 * w + k] = int8_t(aux[w] >> (8 * k));
  int is = 0;
  uint8_t m = 1;
  for (int n = 0; n < kQK_K; n += 128) {
    int shift = 0;
    for (int j = 0; j < 4; ++j) {
      float dl = dAll * (scales[is++] - 32);
      for (int l = 0; l < 16; ++l)
        *y++ = dl * (int8_t((q[l + 0] >> shift) & 3) - ((hm[l + 0] & m) ? 0 : 4));
      dl = dAll * (scales[is++] - 32);
      for (int l = 0; l < 16; ++l)
        *y++ = dl * (int8_t((q[l + 16] >> shift) & 3) - ((hm[l + 16] & m) ? 0 : 4));
      shift += 2;
      m = uint8_t(m << 1);
    }
    q += 32;
  }
}

inline void getScaleMinK4(int j, const uint8_t* q, uint8_t* d, uint8_t* m) {
  if (j < 4) {
    *d = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *d = uint8_t((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *m = uint8_t((q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4));
  }
}

// Q4_K: d @0, dmin @2, scales[12] @4, qs[128] @16.
void deqQ4_K(const uint8_t* b, float* y) {
  const float d = loadHalf(b);
  const float min = loadHalf(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* q = b + 16;
  int is = 0;
  uint8_t sc, m;
  for (int j = 0; j < kQK_K; j += 64) {
    getScaleMinK4(is + 0, scales, &sc, &m);
    const float d1 = d * sc, m1 = min * m;
    getScaleMinK4(is + 1, scales, &sc, &m);
    const float d2 = d * sc, m2 = min * m;
    for (int l = 0; l < 32; ++l)
      *y++ = d1 * (q[l] & 0xF) - m1;
    for (int l = 0; l < 32; ++l)
      *y++ = d2 * (q[l] >> 4) - m2;
    q += 32;
    is += 2;
  }
}

// Q5_K: d @0, dmin @2, scales[12] @4, qh[32] @16, qs[128] @48.
void deqQ5_K(const uint8_t* b, float* y) {
  const float d = loadHalf(b);
  const float min = loadHalf(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qh = b + 16;
  const uint8_t* ql = b + 48;
  int is = 0;
  uint8_t sc, m;
  uint8_t u1 = 1, u2 = 2;
  for (int j = 0; j < kQK_K; j += 64) {
    getScaleMinK4(is + 0, scales, &sc, &m);
    const float d1 = d * sc, m1 = min * m;
    getScaleMinK4(is + 1, scales, &sc, &m);
    const float d2 = d * sc, m2 = min * m;
    for (int l = 0; l < 32; ++l)
      *y++ = d1 * ((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
    for (int l = 0; l < 32; ++l)
      *y++ = d2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
    ql += 32;
    is += 2;
    u1 = uint8_t(u1 << 2);
    u2 = uint8_t(u2 << 2);
  }
}

// Q6_K: ql[128] @0, qh[64] @128, scales[16] (int8) @192, d @208.
void deqQ6_K(const uint8_t* b, float* y) {
  const float d = loadHalf(b + 208);
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192);
  for (int n = 0; n < kQK_K; n += 128) {
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int8_t q1 = int8_t(((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
      const int8_t q2 = int8_t(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
      const int8_t q3 = int8_t(((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
      const int8_t q4 = int8_t(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
      y[l + 0] = d * sc[is + 0] * q1;
      y[l + 32] = d * sc[is + 2] * q2;
      y[l + 64] = d * sc[is + 4] * q3;
      y[l + 96] = d * sc[is + 6] * q4;
    }
    y += 128;
    ql += 64;
    qh += 32;
    sc += 8;
  }
}

// Q8_K: float d @0, qs[256] @4, bsums[16] @260 (not needed to dequantize).
void deqQ8_K(const uint8_t* b, float* y) {
  const float d = loadF32(b);
  const int8_t* qs = reinterpret_cast<const int8_t*>(b + 4);
  for (int j = 0; j < kQK_K; ++j)
    y[j] = d * qs[j];
}

} // namespace

void dequantizeRow(uint32_t t, const uint8_t* src, float* dst, int64_t n) {
  const int64_t blck = blockElements(t), bytes = blockBytes(t);
  if (blck == 0)
    return;
  const int64_t nb = n / blck;
  void (*fn)(const uint8_t*, float*) = nullptr;
  switch (t) {
  case kF32:
    for (int64_t i = 0; i < n; ++i)
      dst[i] = loadF32(src + 4 * i);
    return;
  case kF16:
    for (int64_t i = 0; i < n; ++i)
      dst[i] = loadHalf(src + 2 * i);
    return;
  case kBF16:
    for (int64_t i = 0; i < n; ++i)
      dst[i] = bf16ToFloat(loadU16(src + 2 * i));
    return;
  case kQ4_0: fn = deqQ4_0; break;
  case kQ4_1: fn = deqQ4_1; break;
  case kQ5_0: fn = deqQ5_0; break;
  case kQ5_1: fn = deqQ5_1; break;
  case kQ8_0: fn = deqQ8_0; break;
  case kQ8_1: fn = deqQ8_1; break;
  case kQ2_K: fn = deqQ2_K; break;
  case kQ3_K: fn = deqQ3_K; break;
  case kQ4_K: fn = deqQ4_K; break;
  case kQ5_K: fn = deqQ5_K; break;
  case kQ6_K: fn = deqQ6_K; break;
  case kQ8_K: fn = deqQ8_K; break;
  default: return;
  }
  for (int64_t i = 0; i < nb; ++i)
    fn(src + i * bytes, dst + i * blck);
}

} // namespace qlc::gguf
