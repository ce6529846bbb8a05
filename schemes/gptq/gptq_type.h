// The !gptq weight type (FORMATS.md §2): registration and reference dequantization.
#pragma once
#include <string>

#include "ir/weight_type.h"

namespace qlc::schemes {

/// Reference dequantization of one GPTQ weight (or one expert of a stack) to f32 [N, K], with the
/// element type of the `scales` part given (f16, bf16 or f32; the registered hook infers f32 from
/// the byte size and otherwise assumes f16). g_idx, when used, is range-checked first: the first
/// bad entry is reported ("g_idx[5] = 9 is not a group index (0..3)"). With desc_act = false the
/// groups are k / G (what vLLM computes: it drops g_idx without act-order); a g_idx part that is
/// present must then agree with k / G, else the checkpoint is ambiguous and reported.
std::string dequantizeGptq(const WeightType &t, const PartBytesMap &parts, ElemKind scalesElem,
                           float *out);

} // namespace qlc::schemes
