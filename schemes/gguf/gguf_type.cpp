// The !gguf weight type: a ggml block-quantized tensor from a GGUF file (FORMATS.md §6). One part,
// `data [N, K/blck*bytes] u8`: GGUF rows as stored (ne = [K, N]: each row one output channel of
// K/blck blocks, §6.2); expert stacks ([E] prefix) are the E-major `*_exps` tensors of §6.6.
#include "schemes/gguf/gguf_type.h"

#include "schemes/common/part_data.h"
#include "schemes/gguf/blocks.h"

namespace qlc::schemes {
namespace {

struct GgufName {
  const char *name;
  uint32_t id;
};
// The ggml types !gguf accepts (include/ggml.h ids; §6.3), in the order --list-ops shows them.
constexpr GgufName kTypes[] = {
    {"Q4_0", gguf::kQ4_0}, {"Q4_1", gguf::kQ4_1}, {"Q5_0", gguf::kQ5_0}, {"Q5_1", gguf::kQ5_1},
    {"Q8_0", gguf::kQ8_0}, {"Q2_K", gguf::kQ2_K}, {"Q3_K", gguf::kQ3_K}, {"Q4_K", gguf::kQ4_K},
    {"Q5_K", gguf::kQ5_K}, {"Q6_K", gguf::kQ6_K}, {"F16", gguf::kF16},   {"BF16", gguf::kBF16},
    {"F32", gguf::kF32},
};

struct GgufDims {
  int64_t n = 0, k = 0;
  uint32_t id = 0;
  int64_t blck = 1, bytes = 1;
};

GgufDims dimsOf(const WeightType &t) {
  GgufDims d;
  std::vector<int64_t> s = t.intArrayParam("shape");
  if (s.size() == 2) {
    d.n = s[0];
    d.k = s[1];
  }
  d.id = ggufTypeId(t.identParam("type")).value_or(gguf::kF32);
  d.blck = gguf::blockElements(d.id);
  d.bytes = gguf::blockBytes(d.id);
  return d;
}

std::string verifyGguf(const WeightType &t) {
  std::vector<int64_t> s = t.intArrayParam("shape");
  if (s.size() != 2 || s[0] <= 0 || s[1] <= 0)
    return "shape must be [N, K] with positive dims, got " + dimsStr(s);
  std::string name = t.identParam("type");
  auto id = ggufTypeId(name);
  if (!id || !gguf::hasBlockCodec(*id))
    return "type = " + name + " has no reference block codec";
  GgufDims d = dimsOf(t);
  if (d.k % d.blck != 0)
    return "K = " + std::to_string(d.k) + " is not a multiple of the " + name + " block size " +
           std::to_string(d.blck) + " (GGUF rows are whole blocks of " + std::to_string(d.blck) +
           " elements along K)";
  return "";
}

} // namespace

std::optional<uint32_t> ggufTypeId(llvm::StringRef name) {
  for (const GgufName &t : kTypes)
    if (name == t.name)
      return t.id;
  return std::nullopt;
}

std::string dequantizeGguf(const WeightType &t, const PartBytesMap &parts, float *out) {
  GgufDims d = dimsOf(t);
  int64_t rowBytes = d.k / d.blck * d.bytes;
  if (std::string e = parts::checkSize(parts, "data", d.n * rowBytes, 1); !e.empty())
    return e;
  const uint8_t *src = parts::find(parts, "data")->data();
  for (int64_t n = 0; n < d.n; ++n)
    gguf::dequantizeRow(d.id, src + n * rowBytes, out + n * d.k, d.k);
  return "";
}

void registerGgufImport(); // gguf_import.cpp

void register_gguf() {
  WeightTypeDef def;
  def.mnemonic = "gguf";
  def.summary = "GGUF / ggml block-quantized tensor: rows of K/blck blocks, one row per output "
                "channel";
  std::vector<std::string> names;
  for (const GgufName &t : kTypes)
    names.push_back(t.name);
  def.params = {
      {"type", AttrKind::Ident, std::nullopt, names, "ggml type of the tensor (e.g. Q4_K)"},
      {"shape", AttrKind::IntArray, std::nullopt, {}, "[N, K] = [out_features, in_features]"},
  };
  def.verify = verifyGguf;
  def.logicalShape = [](const WeightType &t) { return t.intArrayParam("shape"); };
  def.parts = [](const WeightType &t) {
    GgufDims d = dimsOf(t);
    return std::vector<PartSpec>{{"data", {ElemKind::U8}, {d.n, d.k / d.blck * d.bytes}, false, 0, 1}};
  };
  def.dequantize = dequantizeGguf;
  WeightTypeRegistry::get().add(std::move(def));
  registerGgufImport();
}

} // namespace qlc::schemes
