// The baselines of qlc-bench, compiled for the host (-march=native) so that Eigen uses the
// machine's widest vectors: Eigen fp32 GEMV / GEMM on dequantized weights, and a STREAM-style read
// (sum) kernel for the memory bandwidth.
#pragma once
#include <cstdint>

namespace qlc::bench {

/// y[n] = sum_k W[n, k] x[k] for n in [nb, ne); W row-major [N, K] (Eigen, one thread).
void eigenGemv(const float *w, int64_t n, int64_t k, const float *x, float *y, int64_t nb,
               int64_t ne);
/// Y[m, n] = sum_k X[m, k] W[n, k] for n in [nb, ne), all m; row-major (Eigen, one thread).
void eigenGemm(const float *w, int64_t n, int64_t k, const float *x, int64_t m, float *y,
               int64_t nb, int64_t ne);
/// Sum of n floats (n a multiple of 64, p 64-byte aligned): a pure streaming read.
float streamSum(const float *p, int64_t n);

} // namespace qlc::bench
