// What the npu-emu device can execute, checked once in NpuEmuExecutor::create before any weight is
// uploaded: every op must be a device op (npu.*, or a core op the device runs) and every weight it
// reads must be in a layout the device's kernels take (!npu_w4 / !npu_w8 / !npu_w8a8 for the npu.*
// ops, dense floating-point for core linear / moe / embedding / rms_norm). A checkpoint layout that
// a mis-written pipeline hands to a device op (e.g. AWQ nibble order) is an error naming the op's
// location and the weight, never a wrong answer.
#pragma once
#include <string>
#include <vector>

#include "llvm/Support/Error.h"

#include "ir/ir.h"

namespace qlc::npu_emu {

/// Checks `op` of `m`; the error is "file:line:col: 'op' npu-emu: ..." naming the weight.
llvm::Error checkDeviceOp(const Module &m, const Operation &op);

/// Core ops the device runs with the registered reference implementations (they read no weights).
bool isReferenceRunCoreOp(const std::string &name);

} // namespace qlc::npu_emu
