// LLVM IR generation of one kernel specialisation (IRBuilder, explicit vector types). The signature
// of every kernel is
//
//   void @<spec.symbol()>(const float *x, int64 M, const uint8_t *const *parts, float *y,
//                         int64 n_begin, int64 n_end, float *scratch)
//
// computing y[m, n] = sum_k x[m, k] * W[n, k] for m < M, n in [n_begin, n_end), with x [M, K] and
// y [M, N] row-major f32 and `parts` the weight's parts in spec.partSlots() order. `scratch` holds
// spec.scratchFloats() floats (f32 gemm and all int8-activation kernels; may be null when that is
// 0). See codegen/README.md.
#pragma once
#include <memory>

#include "codegen/kernel_spec.h"

namespace llvm {
class LLVMContext;
class Module;
} // namespace llvm

namespace qlc::codegen {

/// Tile sizes (also used by KernelSpec::scratchFloats and the runner).
inline constexpr int kRowsNR = 4;     ///< RowsK: output rows per tile
inline constexpr int kColsNV = 4;     ///< ColsN gemv: column vectors per tile
inline constexpr int kGemmMB = 64;    ///< gemm: rows of x per block (x block stays in L2)
inline constexpr int64_t kWideN = 32; ///< int8 gemm: output channels of a wide tile

/// A module holding the kernel function (unoptimised), with the host's target triple, data layout
/// and target-cpu / target-features attributes.
std::unique_ptr<llvm::Module> emitKernelModule(const KernelSpec &spec, llvm::LLVMContext &ctx);

} // namespace qlc::codegen
