// The !w8a8 weight type (FORMATS.md §5.4): registration and reference dequantization.
#pragma once
#include <string>

#include "ir/weight_type.h"

namespace qlc::schemes {

/// Reference dequantization of one W8A8_DYNAMIC weight (or one expert of a stack) to f32 [N, K]:
/// w · scale through qlc::w8a8::dequantize, with the element type of `weight_scale` given (f16,
/// bf16 or f32; the registered hook infers f32 from the byte size and otherwise assumes f16).
/// weight_offset is ignored, as by the runtime (npu_quant_matmul gets only the scale, §5.4).
std::string dequantizeW8a8(const WeightType &t, const PartBytesMap &parts, ElemKind scaleElem,
                           float *out);

} // namespace qlc::schemes
