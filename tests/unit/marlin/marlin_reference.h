// Test-only: the Marlin layout computed the way FORMATS.md §4.2 / §4.5 / §4.6 describe the Python
// reference (marlin_permute_weights + marlin_weights, get_scale_perms, marlin_zero_points): tile,
// 1024-entry perm, interleave, sequential pack — table-driven, sharing no code with the closed
// forms of schemes/marlin/codec.h that they check. And the inverse (Marlin -> natural codes,
// scales, zeros), built by inverting the same tables.
#pragma once

#include <cassert>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "ir/weight_type.h"

namespace qlc::marlin_test {

inline std::vector<int> interleaveOf(int bits) {
  return bits == 4 ? std::vector<int>{0, 2, 4, 6, 1, 3, 5, 7} : std::vector<int>{0, 2, 1, 3};
}

/// §4.2 step 2: get_weight_perm (= Marlin _get_perms) with the interleave applied.
inline std::vector<int> weightPerm(int bits) {
  std::vector<int> perm;
  for (int i = 0; i < 32; ++i) {
    int col = i / 4;
    std::vector<int> perm1;
    for (int block = 0; block < 2; ++block)
      for (int row : {2 * (i % 4), 2 * (i % 4) + 1, 2 * (i % 4 + 4), 2 * (i % 4 + 4) + 1})
        perm1.push_back(16 * row + col + 8 * block);
    for (int j = 0; j < 4; ++j)
      for (int p : perm1)
        perm.push_back(p + 256 * j);
  }
  std::vector<int> il = interleaveOf(bits), out(perm.size());
  size_t g = il.size();
  for (size_t a = 0; a < perm.size() / g; ++a)
    for (size_t m = 0; m < g; ++m)
      out[a * g + m] = perm[a * g + size_t(il[m])];
  return out;
}

/// §4.2 step 1: tile index of (k, n) within its k-tile row buffer of 16*N entries
/// (reshape [K/16, 16, N/16, 16], permute (0, 2, 1, 3)).
inline int64_t tileIndex(int64_t k, int64_t n) { return (n / 16) * 256 + (k % 16) * 16 + n % 16; }

/// codes [K, N] -> qweight [K/16, N*16/pf] by the reference algorithm.
inline std::vector<uint32_t> referencePack(const std::vector<uint8_t> &codes, int64_t K, int64_t N,
                                           int bits) {
  std::vector<int> perm = weightPerm(bits);
  int64_t pf = 32 / bits, rowLen = 16 * N;
  std::vector<uint32_t> out(size_t(K / 16 * rowLen / pf), 0u);
  std::vector<uint32_t> buf(static_cast<size_t>(rowLen)), permuted(static_cast<size_t>(rowLen));
  for (int64_t kt = 0; kt < K / 16; ++kt) {
    for (int64_t r = 0; r < 16; ++r)
      for (int64_t n = 0; n < N; ++n)
        buf[size_t(tileIndex(r, n))] = codes[size_t((kt * 16 + r) * N + n)];
    for (int64_t c = 0; c < rowLen / 1024; ++c) // §4.2 step 3
      for (int64_t m = 0; m < 1024; ++m)
        permuted[size_t(c * 1024 + m)] = buf[size_t(c * 1024 + perm[size_t(m)])];
    for (int64_t w = 0; w < rowLen / pf; ++w) // §4.2 step 4
      for (int64_t i = 0; i < pf; ++i)
        out[size_t(kt * (rowLen / pf) + w)] |= permuted[size_t(w * pf + i)] << (bits * i);
  }
  return out;
}

/// Inverse of referencePack.
inline std::vector<uint8_t> referenceUnpack(const std::vector<uint32_t> &qweight, int64_t K,
                                            int64_t N, int bits) {
  std::vector<int> perm = weightPerm(bits);
  int64_t pf = 32 / bits, rowLen = 16 * N;
  uint32_t mask = (1u << bits) - 1;
  std::vector<uint8_t> codes(size_t(K * N));
  std::vector<uint32_t> permuted(static_cast<size_t>(rowLen)), buf(static_cast<size_t>(rowLen));
  for (int64_t kt = 0; kt < K / 16; ++kt) {
    for (int64_t w = 0; w < rowLen / pf; ++w)
      for (int64_t i = 0; i < pf; ++i)
        permuted[size_t(w * pf + i)] =
            (qweight[size_t(kt * (rowLen / pf) + w)] >> (bits * i)) & mask;
    for (int64_t c = 0; c < rowLen / 1024; ++c)
      for (int64_t m = 0; m < 1024; ++m)
        buf[size_t(c * 1024 + perm[size_t(m)])] = permuted[size_t(c * 1024 + m)];
    for (int64_t r = 0; r < 16; ++r)
      for (int64_t n = 0; n < N; ++n)
        codes[size_t((kt * 16 + r) * N + n)] = uint8_t(buf[size_t(tileIndex(r, n))]);
  }
  return codes;
}

/// §4.5 get_scale_perms.
inline std::vector<int> scalePerm() {
  std::vector<int> p;
  for (int i = 0; i < 8; ++i)
    for (int j = 0; j < 8; ++j)
      p.push_back(i + 8 * j);
  return p;
}
inline std::vector<int> scalePermSingle() {
  std::vector<int> p;
  for (int i = 0; i < 4; ++i)
    for (int j : {0, 1, 8, 9, 16, 17, 24, 25})
      p.push_back(2 * i + j);
  return p;
}

/// marlin_permute_scales(s [rows, N], size_k, size_n, group_size) on elements of T.
template <typename T>
std::vector<T> referencePermuteScales(const std::vector<T> &s, int64_t groupSize, int64_t sizeK) {
  std::vector<int> p = groupSize < sizeK && groupSize != -1 ? scalePerm() : scalePermSingle();
  std::vector<T> out(s.size());
  for (size_t c = 0; c < s.size() / p.size(); ++c)
    for (size_t m = 0; m < p.size(); ++m)
      out[c * p.size() + m] = s[c * p.size() + size_t(p[m])];
  return out;
}
template <typename T>
std::vector<T> referenceUnpermuteScales(const std::vector<T> &s, int64_t groupSize, int64_t sizeK) {
  std::vector<int> p = groupSize < sizeK && groupSize != -1 ? scalePerm() : scalePermSingle();
  std::vector<T> out(s.size());
  for (size_t c = 0; c < s.size() / p.size(); ++c)
    for (size_t m = 0; m < p.size(); ++m)
      out[c * p.size() + size_t(p[m])] = s[c * p.size() + m];
  return out;
}

/// marlin_zero_points(zp [rows, N]): scale_perm, interleave, pack_cols (§4.6).
inline std::vector<uint32_t> referenceZeroPoints(const std::vector<uint8_t> &zp, int64_t rows,
                                                 int64_t N, int bits) {
  std::vector<uint8_t> a = referencePermuteScales(zp, 1, 2); // grouped: scale_perm
  std::vector<int> il = interleaveOf(bits);
  std::vector<uint8_t> b(a.size());
  for (size_t c = 0; c < a.size() / il.size(); ++c)
    for (size_t m = 0; m < il.size(); ++m)
      b[c * il.size() + m] = a[c * il.size() + size_t(il[m])];
  int64_t pf = 32 / bits;
  std::vector<uint32_t> out(size_t(rows * N / pf), 0u);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t n = 0; n < N; ++n)
      out[size_t(r * (N / pf) + n / pf)] |= uint32_t(b[size_t(r * N + n)]) << (bits * (n % pf));
  return out;
}
inline std::vector<uint8_t> referenceUnpackZeroPoints(const std::vector<uint32_t> &qz, int64_t rows,
                                                      int64_t N, int bits) {
  int64_t pf = 32 / bits;
  std::vector<uint8_t> b(size_t(rows * N));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t n = 0; n < N; ++n)
      b[size_t(r * N + n)] =
          uint8_t((qz[size_t(r * (N / pf) + n / pf)] >> (bits * (n % pf))) & ((1u << bits) - 1));
  std::vector<int> il = interleaveOf(bits);
  std::vector<uint8_t> a(b.size());
  for (size_t c = 0; c < b.size() / il.size(); ++c)
    for (size_t m = 0; m < il.size(); ++m)
      a[c * il.size() + size_t(il[m])] = b[c * il.size() + m];
  return referenceUnpermuteScales(a, 1, 2);
}

/// A !marlin weight (one expert) taken apart: what marlin-permute started from.
struct NaturalWeight {
  std::vector<uint8_t> codes;  // [K, N], rows in Marlin (sorted) order
  std::vector<uint8_t> scales; // [G', N] raw bytes, natural column order
  std::vector<uint8_t> zeros;  // [G', N]; empty without zero points
  std::vector<int32_t> perm, gIdx;
};

template <typename T> std::vector<T> wordsOf(llvm::ArrayRef<uint8_t> b) {
  std::vector<T> v(b.size() / sizeof(T));
  if (!v.empty())
    std::memcpy(v.data(), b.data(), v.size() * sizeof(T));
  return v;
}

/// The inverse transform: Marlin layout -> natural codes, scales, zeros (+ perm, sorted g_idx).
inline NaturalWeight inverse(const WeightType &t, const PartBytesMap &parts) {
  std::vector<int64_t> s = t.intArrayParam("shape");
  int64_t N = s[0], K = s[1], G = t.intParam("group");
  int bits = int(t.intParam("bits"));
  int64_t rows = G == -1 ? 1 : K / G;
  NaturalWeight w;
  w.codes = referenceUnpack(wordsOf<uint32_t>(parts.at("qweight").bytes), K, N, bits);
  const PartView &sc = parts.at("scales");
  size_t eb = sc.bytes.size() / size_t(rows * N);
  // Unpermute whole elements (any float width) by moving element indices.
  std::vector<int64_t> idx(size_t(rows * N));
  for (size_t i = 0; i < idx.size(); ++i)
    idx[i] = int64_t(i);
  std::vector<int64_t> src = referenceUnpermuteScales(idx, G, K);
  w.scales.resize(sc.bytes.size());
  for (size_t i = 0; i < idx.size(); ++i)
    std::memcpy(&w.scales[i * eb], &sc.bytes[size_t(src[i]) * eb], eb);
  if (t.boolParam("zero_point"))
    w.zeros = referenceUnpackZeroPoints(wordsOf<uint32_t>(parts.at("qzeros").bytes), rows, N, bits);
  if (t.boolParam("act_order")) {
    w.perm = wordsOf<int32_t>(parts.at("perm").bytes);
    w.gIdx = wordsOf<int32_t>(parts.at("g_idx").bytes);
  }
  return w;
}

} // namespace qlc::marlin_test
