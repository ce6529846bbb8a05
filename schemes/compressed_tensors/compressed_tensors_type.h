// The !ct_wna16 weight type (FORMATS.md §3): registration and reference dequantization.
#pragma once
#include <string>

#include "ir/weight_type.h"

namespace qlc::schemes {

/// Reference dequantization of one compressed-tensors pack-quantized weight (or one expert of a
/// stack) to f32 [N, K] through qlc::ct::dequantize, with the element type of `weight_scale` given
/// (f16, bf16 or f32; the registered hook infers f32 from the byte size and otherwise assumes
/// f16). weight_g_idx is range-checked ("weight_g_idx[5] = 9 is not a group index (0..3)") and an
/// optional weight_shape must hold [N, K].
std::string dequantizeCtWna16(const WeightType &t, const PartBytesMap &parts, ElemKind scaleElem,
                              float *out);

} // namespace qlc::schemes
