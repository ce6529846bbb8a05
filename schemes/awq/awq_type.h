// The !awq weight type (FORMATS.md §1): registration and reference dequantization.
#pragma once
#include <string>

#include "ir/weight_type.h"

namespace qlc::schemes {

/// Reference dequantization of one AWQ GEMM weight (or one expert of a stack) to f32 [N, K].
/// `scalesElem` is the element type of the `scales` part (f16, bf16 or f32): the registered
/// `dequantize` hook only sees bytes, so it infers f32 from the byte size and otherwise assumes
/// f16 (see the note in awq_type.cpp); callers that know the part's type should call this.
/// fp16 scales go through qlc::awq::dequantize itself; bf16 / f32 scales are decoded exactly and
/// used in the same formula (q − z) · s.
std::string dequantizeAwq(const WeightType &t, const PartBytesMap &parts, ElemKind scalesElem,
                          float *out);

} // namespace qlc::schemes
