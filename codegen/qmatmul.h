// Running a fused dequant GEMV/GEMM: picks the M-class kernel, splits N over the thread pool, and
// gives every worker its own scratch.
#pragma once
#include <cstdint>

#include "llvm/Support/Error.h"

#include "codegen/jit.h"
#include "codegen/thread_pool.h"

namespace qlc::codegen {

/// y [M, N] = x [M, K] · W^T for the weight described by `spec` (its mclass is overridden from M)
/// whose parts are `parts` (spec.partSlots() order). `pool` null = on the calling thread only.
llvm::Error runQMatmul(KernelSpec spec, const uint8_t *const *parts, const float *x, int64_t m,
                       float *y, ThreadPool *pool, KernelCache &cache = KernelCache::global());

} // namespace qlc::codegen
