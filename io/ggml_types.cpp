#include "io/ggml_types.h"

#include <string>

namespace qlc::io {

namespace {
constexpr uint32_t QK_K = 256;

// Sizes are sizeof(block_*) from ggml-common.h; FORMATS.md §6.4 lists the Q*/K ones.
const GgmlTypeTraits kTypes[] = {
    {ggml::F32, "F32", 1, 4, false},
    {ggml::F16, "F16", 1, 2, false},
    {ggml::Q4_0, "Q4_0", 32, 18, true},
    {ggml::Q4_1, "Q4_1", 32, 20, true},
    {ggml::Q5_0, "Q5_0", 32, 22, true},
    {ggml::Q5_1, "Q5_1", 32, 24, true},
    {ggml::Q8_0, "Q8_0", 32, 34, true},
    {ggml::Q8_1, "Q8_1", 32, 36, true},
    {ggml::Q2_K, "Q2_K", QK_K, 84, true},
    {ggml::Q3_K, "Q3_K", QK_K, 110, true},
    {ggml::Q4_K, "Q4_K", QK_K, 144, true},
    {ggml::Q5_K, "Q5_K", QK_K, 176, true},
    {ggml::Q6_K, "Q6_K", QK_K, 210, true},
    {ggml::Q8_K, "Q8_K", QK_K, 292, true},
    {ggml::IQ2_XXS, "IQ2_XXS", QK_K, 66, true}, // half d; u16 qs[32]
    {ggml::IQ2_XS, "IQ2_XS", QK_K, 74, true},   // + u8 scales[8]
    {ggml::IQ3_XXS, "IQ3_XXS", QK_K, 98, true}, // half d; u8 qs[96]
    {ggml::IQ1_S, "IQ1_S", QK_K, 50, true},     // half d; u8 qs[32]; u16 qh[8]
    {ggml::IQ4_NL, "IQ4_NL", 32, 18, true},     // half d; u8 qs[16]
    {ggml::IQ3_S, "IQ3_S", QK_K, 110, true},    // half d; qs[64] qh[8] signs[32] scales[4]
    {ggml::IQ2_S, "IQ2_S", QK_K, 82, true},     // half d; qs[64] qh[8] scales[8]
    {ggml::IQ4_XS, "IQ4_XS", QK_K, 136, true},  // half d; u16 scales_h; scales_l[4]; qs[128]
    {ggml::I8, "I8", 1, 1, false},
    {ggml::I16, "I16", 1, 2, false},
    {ggml::I32, "I32", 1, 4, false},
    {ggml::I64, "I64", 1, 8, false},
    {ggml::F64, "F64", 1, 8, false},
    {ggml::IQ1_M, "IQ1_M", QK_K, 56, true}, // qs[32] qh[16] scales[8], no d
    {ggml::BF16, "BF16", 1, 2, false},
    {ggml::TQ1_0, "TQ1_0", QK_K, 54, true}, // qs[48] qh[4] half d
    {ggml::TQ2_0, "TQ2_0", QK_K, 66, true}, // qs[64] half d
    {ggml::MXFP4, "MXFP4", 32, 17, true},   // u8 e (E8M0); qs[16]
    {ggml::NVFP4, "NVFP4", 64, 36, true},   // u8 d[4] (UE4M3); qs[32]
    // 41 (Q1_0) and 42 (Q2_0) are too recent to have a confirmed layout here: treated as unknown.
};

llvm::Error err(const std::string &msg) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), msg);
}
} // namespace

const GgmlTypeTraits *ggmlTypeTraits(uint32_t id) {
  for (const GgmlTypeTraits &t : kTypes)
    if (t.id == id)
      return &t;
  return nullptr;
}

llvm::ArrayRef<GgmlTypeTraits> ggmlAllTypes() { return kTypes; }

std::optional<uint32_t> ggmlTypeByName(llvm::StringRef name) {
  for (const GgmlTypeTraits &t : kTypes)
    if (t.name == name)
      return t.id;
  return std::nullopt;
}

llvm::Expected<uint64_t> ggmlRowBytes(uint32_t type, int64_t ne0) {
  const GgmlTypeTraits *t = ggmlTypeTraits(type);
  if (!t)
    return err("unknown or removed ggml type " + std::to_string(type));
  if (ne0 < 0)
    return err("negative row length " + std::to_string(ne0));
  if (ne0 % t->blockSize != 0)
    return err("row length " + std::to_string(ne0) + " is not a multiple of the " +
               t->name.str() + " block size " + std::to_string(t->blockSize));
  uint64_t bytes;
  if (__builtin_mul_overflow(uint64_t(ne0) / t->blockSize, uint64_t(t->typeSize), &bytes))
    return err("row of " + std::to_string(ne0) + " " + t->name.str() + " elements overflows");
  return bytes;
}

llvm::Expected<uint64_t> ggmlTensorBytes(uint32_t type, llvm::ArrayRef<int64_t> ne) {
  auto row = ggmlRowBytes(type, ne.empty() ? 1 : ne[0]);
  if (!row)
    return row.takeError();
  uint64_t bytes = *row;
  // Element count must fit int64 too, as ggml checks (ggml_nelements is int64_t).
  int64_t elems = ne.empty() ? 1 : ne[0];
  for (size_t i = 1; i < ne.size(); ++i) {
    if (ne[i] < 0)
      return err("negative dimension " + std::to_string(ne[i]));
    if (__builtin_mul_overflow(bytes, uint64_t(ne[i]), &bytes) ||
        __builtin_mul_overflow(elems, ne[i], &elems))
      return err("tensor size overflows 64 bits");
  }
  return bytes;
}

} // namespace qlc::io
