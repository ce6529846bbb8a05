// The !marlin weight type (FORMATS.md §4): Marlin's repacked layout, produced by marlin-permute
// and read by marlin.gemm / marlin.moe. Registration, and the entry points of the folder's other
// files (called from register_marlin).
#pragma once
#include <string>

#include "ir/weight_type.h"

namespace qlc::schemes {

/// Reference dequantization of one !marlin weight (or one expert of a stack) to f32 [N, K] in the
/// ORIGINAL k order: reads qweight / scales / qzeros with the closed forms of
/// schemes/marlin/codec.h (not through an inverse repack), W[n][perm[k]] = (code(k, n) − z[g][n]) ·
/// s[g][n] with g = g_idx[k] under act_order (else k / G), z = 2^(b−1) without zero points (uint4b8
/// / uint8b128). Returns "" or what is wrong with the data (a perm that is not a permutation, ...).
std::string dequantizeMarlin(const WeightType &t, const PartBytesMap &parts, float *out);

void registerMarlinOps();         // marlin_ops.cpp: marlin.gemm, marlin.moe and their references
void registerMarlinPermutePass(); // marlin_permute.cpp: marlin-permute and lower-marlin

} // namespace qlc::schemes
