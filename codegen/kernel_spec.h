// A kernel specialisation: everything the generated code of one fused dequant GEMV/GEMM depends on
// (layout, bits, group, zero points, ggml type, scale dtype, N, K, M-class, vector width). The
// kernel cache is keyed by `key()`, so layers of a model that share shapes share a kernel.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ir/types.h"

namespace qlc {
class Weight;
struct WeightType;
} // namespace qlc

namespace qlc::codegen {

enum class Layout {
  GgufQ8_0, ///< GGUF rows of Q8_0 blocks (32 x int8, f16 d)
  GgufQ4_0, ///< GGUF rows of Q4_0 blocks (32 x 4-bit, f16 d)
  GgufQ4_K, ///< GGUF rows of Q4_K super-blocks (256, 8 sub-blocks with 6-bit scale / min)
  GgufQ6_K, ///< GGUF rows of Q6_K super-blocks (256, 16 sub-blocks with int8 scales)
  GgufQ4_1, ///< GGUF rows of Q4_1 blocks (32 x 4-bit, f16 d and m): int8 activations only
  GgufQ5_0, ///< GGUF rows of Q5_0 blocks (32 x 5-bit, f16 d): int8 activations only
  GgufQ5_1, ///< GGUF rows of Q5_1 blocks (32 x 5-bit, f16 d and m): int8 activations only
  GgufQ2_K, ///< GGUF rows of Q2_K super-blocks (256, 16 sub-blocks with 4-bit scale / min)
  GgufQ3_K, ///< GGUF rows of Q3_K super-blocks (256, 16 sub-blocks with 6-bit signed scales)
  GgufQ5_K, ///< GGUF rows of Q5_K super-blocks (256, 8 sub-blocks with 6-bit scale / min)
  // The next three name a packing; KernelSpec::bits selects the width (key "awq8", "gptq3", ...).
  Awq4,     ///< AutoAWQ GEMM (bits 4, 8): qweight [K, N/pf] interleaved along N, qzeros, scales [K/G, N]
  Gptq4,    ///< GPTQ (bits 2, 3, 4, 8): qweight [K*b/32, N] along K, qzeros [G', N*b/32], scales, g_idx
  CtWna16_4, ///< compressed-tensors pack-quantized (bits 4, 8): weight_packed [N, ceil(K/pf)]
  W8a8,     ///< vllm-ascend W8A8_DYNAMIC: int8 weight [N, K], weight_scale [N, 1]; int8 kernels
            ///< quantize x per token (row), not per 32-block
  Marlin,    ///< !marlin 4 / 8-bit: qweight [K/16, N*16/pf] in 16x64 tiles, permuted scales /
             ///< zeros (FORMATS.md §4), act_order: perm + sorted g_idx
  NpuW4,     ///< !npu_w4: signed int4 [K, N/8] natural order, (w + offset) * scale per [K/G, N]
  NpuW8      ///< !npu_w8: signed int8 [K, N], (w + offset) * scale per [K/G, N]
};

/// gemv: M <= 8 rows (decode), weights unpacked in registers in the innermost loop.
/// gemm: M > 8 (prefill), weights unpacked once per NR-row slab into a small per-thread buffer.
enum class MClass { Gemv, Gemm };
inline constexpr int64_t kGemvMaxM = 8;
inline MClass mClassFor(int64_t m) { return m <= kGemvMaxM ? MClass::Gemv : MClass::Gemm; }

/// The two loop families: K-vectorised dot products over rows of W (GGUF, CT: the codes of one
/// output channel are contiguous along K), or N-vectorised outer products (AWQ, GPTQ: the codes of
/// consecutive output channels are contiguous).
enum class Family { RowsK, ColsN };

/// How a kernel consumes the activations x: f32 (weights unpacked to f32, f32 FMAs), or Int8 (x
/// quantized inside the kernel to int8 with an f32 scale per 32-element block, or per 256
/// (KernelSpec::actScaleBlock), weights unpacked to 8-bit codes, integer dot products
/// `vpdpbusd`, one f32 scale FMA per block: llama.cpp's scheme). Int8 trades the activation
/// rounding error (bounded in codegen/README.md) for speed.
enum class Activations { F32, Int8 };
/// Elements per activation quantization block (one f32 scale each).
inline constexpr int64_t kActBlock = 32;

/// How the kernels read a weight's main part: as the checkpoint stores it (Rows), or re-laid-out
/// once when the weight is prepared (codegen/repack.h) so that vector lanes are output channels.
/// Channels16 (every GGUF block type, int8 activations, N a multiple of 32): per
/// 16 output channels and block, each field of the block transposed across the 16 channels, e.g.
/// for Q4_0 the 16 f16 d then 4 x 16 int32 words, word (j, c) = code bytes 4j .. 4j+3 of channel
/// c (low nibbles: elements 4j .. 4j+3, high: 16 + 4j ..); the same bytes, except that Q5_0 /
/// Q5_1's 32 high bits are transposed as 8 x 4 bits (codegen/repack.cpp). For AWQ / GPTQ 4- and
/// 8-bit (int8 activations, N a multiple of 16) the qweight as 16-channel strips of
/// GPTQ-oriented words, 256 (512) contiguous bytes per 32-block, instead of rows along K; Marlin
/// and NPU weights (int8 activations) take the same packing, their codes made unsigned (NPU: the
/// sign bit flipped), with Marlin's scales and zero points put back in channel order.
enum class Packing { Rows, Channels16 };

struct KernelSpec {
  Layout layout = Layout::GgufQ8_0;
  int bits = 8;
  int64_t group = 0;          ///< group size along K (resolved: -1 -> K); 0 for GGUF / channel
  bool zeroPoint = false;     ///< asymmetric: zero points read from the checkpoint (NPU: the
                              ///< antiquant_offset part is present)
  bool gptqV1 = false;        ///< GPTQ v1: stored zero = zero - 1
  bool gIdx = false;          ///< groups come from g_idx (GPTQ desc_act, CT actorder = group,
                              ///< Marlin act_order: then x is read through `perm` too)
  ElemKind scaleElem = ElemKind::F16; ///< AWQ / GPTQ / CT scales
  std::string ggmlType;       ///< GGUF: "Q4_K", ...
  int64_t n = 0, k = 0;
  MClass mclass = MClass::Gemv;
  int vectorWidth = 0;        ///< f32 lanes per vector; 0 = the host's (16 with AVX-512)
  Activations act = Activations::F32;

  Family family() const;
  /// Stable cache key / symbol suffix, e.g. "gguf.Q4_K.n256.k256.gemv.v16".
  std::string key() const;
  /// The kernel function's symbol.
  std::string symbol() const;
  /// Part names in the order the kernel's `parts` argument holds them ("" = unused slot).
  std::vector<std::string> partSlots() const;
  /// Output channels a thread's [n_begin, n_end) range must be aligned to (ColsN: 8 codes/word).
  int64_t nAlign() const;
  /// Threads' [n_begin, n_end) chunks start at multiples of this (the kernel's n-tile), so every
  /// output is computed by the same instruction sequence whatever the split.
  int64_t threadAlign() const;
  /// Packing::Channels16 gemv kernels: channels a tile (threadAlign of the gemv M-class).
  int64_t gemvThreadAlign() const;
  /// f32 scratch elements the kernel needs per call (per thread) in `scratch`; 0 for f32 gemv.
  int64_t scratchFloats() const;
  /// f32-activation kernels: depth of the f32 accumulation chain of one output (sequential roundings), for the error
  /// bound |y_kernel - y_exact| <= gamma(depth) * sum_k |x_k w_k|, gamma(d) = d u / (1 - d u).
  int64_t accumulationDepth() const;
  /// How the kernels read the main part (a function of the fields above): Channels16 for int8
  /// activations on every GGUF block type with N a multiple of 32 (every real
  /// model's N, so the wide tiles never leave a ragged tail in that layout) and AWQ / GPTQ 4- and
  /// 8-bit with N % 16 == 0.
  Packing packing() const;
  /// Resolves vectorWidth 0 to the host's.
  int lanes() const;
  /// Whether an int8-activation kernel exists for this specialisation (on any host): every GGUF
  /// quantized type with K % 32 == 0; AWQ / GPTQ 4- and 8-bit and compressed-tensors 4- and 8-bit
  /// with K and the group multiples of 32 and no g_idx (act-order keeps f32 activations); Marlin
  /// and NPU 4- and 8-bit on the same terms and N % 16 == 0 (NPU: where the antiquant offsets are
  /// integers, which the cpu executor checks when it prepares the weight); W8A8 for every K of
  /// the type (its int8 kernels quantize x per token, as the scheme, not per 32-block).
  bool int8Capable() const;
  /// Int8 kernels: rows of x quantized at a time (the m-block; the whole M for gemv).
  int64_t int8RowsPerBlock() const;
  /// Elements of x per activation scale: kActBlock, but 256 (one scale per super-block, as
  /// llama.cpp's Q8_K) for the Q6_K / Q3_K / Q2_K gemm on Channels16, whose wide tile then
  /// applies it once per super-block instead of once per 16-element half (codegen/README.md).
  int64_t actScaleBlock() const;
};

/// The host has 512-bit 8-bit dot products (AVX-512 VNNI, BW, VL): the int8 kernels use them.
bool hostHasInt8Dot();
/// The activation mode chosen for new specialisations of int8-capable layouts: the override set
/// by setActivationOverride, else the environment variable QLC_CPU_ACTIVATIONS (f32 | int8),
/// else int8 where the host has int8 dot products (GGUF, AWQ, GPTQ; as llama.cpp), else f32.
Activations defaultActivations(const KernelSpec &s);
/// Process-wide override of defaultActivations (tests); nullopt restores the default.
void setActivationOverride(std::optional<Activations> a);

/// f32 lanes of the host's widest vector unit: 16 (AVX-512), 8 (AVX/AVX2), else 4.
int hostVectorWidth();
/// "skylake-avx512", ... (llvm::sys::getHostCPUName).
std::string hostCpuName();

/// The specialisation of a quantized weight (one expert's [N, K] for expert stacks), or the
/// reason there is no JIT kernel for it yet (e.g. "gguf Q2_K has no JIT kernel yet").
/// The M-class is left at gemv; callers set it.
struct SpecOrReason {
  std::optional<KernelSpec> spec;
  std::string reason;
};
SpecOrReason specForWeight(const Weight &w);
SpecOrReason specForWeightType(const WeightType &t, const std::vector<std::pair<std::string, ElemKind>> &partElems);

} // namespace qlc::codegen
