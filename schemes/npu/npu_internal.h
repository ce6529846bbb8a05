// Registration entry points of the npu scheme folder (called by register_npu in npu_scheme.cpp),
// and the helpers the pass, the ops and the tests share.
#pragma once
#include <string>

#include "ir/ir.h"

namespace qlc::schemes {

void registerNpuTypes();             // npu_types.cpp: !npu_w4, !npu_w8, !npu_w8a8
void registerNpuOps();               // npu_ops.cpp: npu.* OpDefs
void registerNpuReferenceOps();      // npu_reference_ops.cpp
void registerNpuLayoutRewritePass(); // npu_layout_rewrite.cpp (+ the lower-npu pipeline)

/// "" if `w` is a quantized weight of type !<mnemonic>, else a message for `op`'s infer that says
/// what the weight is and how to get the right one.
std::string expectWeightType(const Weight &w, const std::string &mnemonic, const std::string &op,
                             const std::string &role);

/// True for the antiquant weight types of npu.weight_quant_batchmatmul / npu.fused_experts:
/// !npu_w4 (int4 in int32) and !npu_w8 (int8).
bool isNpuAntiquantType(const Weight &w);

} // namespace qlc::schemes
