// Reference codecs for the GGUF / ggml block formats (FORMATS.md §6.4, §6.5).
//
// dequantizeRow follows ggml's scalar reference (`ggml-quants.c dequantize_row_*`) including its
// fp32 evaluation order, so it is meant to be bit-identical to ggml's scalar dequantizer (modulo
// FMA contraction, which this library disables with -ffp-contract=off).
// quantizeRow is qlc's own reference quantizer: it produces valid blocks whose round-trip error is
// within the usual error of each format, but it is not bit-identical to llama-quantize.
#pragma once
#include <cstdint>
#include <vector>

namespace qlc::gguf {

/// ggml type ids handled here (include/ggml.h numbering).
enum GgmlBlockType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kBF16 = 30,
};

/// True for the types this codec handles: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1,
/// Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K.
bool hasBlockCodec(uint32_t ggmlType);

/// Elements per block (1 for F32/F16/BF16, 32 for the legacy quants, 256 for K-quants) and bytes
/// per block. Both return 0 for unsupported types. (The authoritative table for all ggml types is
/// io/ggml_types.h; these agree with it for the supported types.)
int64_t blockElements(uint32_t ggmlType);
int64_t blockBytes(uint32_t ggmlType);
/// Byte offsets of a quantized block's f16 fields (d, and m / dmin / s where the type has one);
/// empty for the others (Q8_K's d is f32). Tests and benchmarks write finite scales there into
/// blocks of random bytes.
std::vector<int> halfFieldOffsets(uint32_t ggmlType);

/// Dequantize n elements (n a multiple of the type's block size) from src (n/blck blocks) into dst.
/// Precondition (checked by callers): supported type, sizes valid.
void dequantizeRow(uint32_t ggmlType, const uint8_t* src, float* dst, int64_t n);

/// Quantize n f32 values into n/blck blocks at dst. Precondition as for dequantizeRow.
/// Own design (min/max or signed-max initial scales refined by a small local search that avoids
/// clipping and minimises a weighted squared error), not a copy of ggml's quantizers. Finite
/// inputs only. Typical max|err|/max|x| on N(0,1) data: see tests/unit/gguf.
void quantizeRow(uint32_t ggmlType, const float* src, uint8_t* dst, int64_t n);

} // namespace qlc::gguf
