// Load-time re-layout of a weight part for the kernels that read it in another order than the
// checkpoint's (KernelSpec::packing). A repack moves bytes (and, within a Q5_0 / Q5_1 qh word or
// a Marlin / NPU word, bits; NPU codes also get their sign bit flipped) only: same size, and
// unrepackPart gives the input back bit for bit
// (tests/unit/codegen/repack_test.cpp).
#pragma once
#include <cstddef>
#include <cstdint>

#include "codegen/kernel_spec.h"

namespace qlc::codegen {

/// Whether the kernels of `s` read part slot `slot` (KernelSpec::partSlots order) re-laid-out.
bool isRepackedPart(const KernelSpec &s, size_t slot);
/// Bytes of one [N, K] matrix's repacked part `slot` (the checkpoint's size: the callers check it).
int64_t repackedPartBytes(const KernelSpec &s, size_t slot);
/// dst = the kernel layout of part `slot` (one for which isRepackedPart holds); src and dst hold `stacks` experts' parts back to back
/// (1 for a plain weight), each of the checkpoint's size for one [N, K] matrix.
void repackPart(const KernelSpec &s, size_t slot, const uint8_t *src, uint8_t *dst, int64_t stacks);
/// The inverse of repackPart.
void unrepackPart(const KernelSpec &s, size_t slot, const uint8_t *src, uint8_t *dst,
                  int64_t stacks);

} // namespace qlc::codegen
