// The GGUF provider: a .gguf file's tensors under HF-style names (FORMATS.md §6.2, §6.6), each a
// dense tensor (F32/F16/BF16) or a !gguf<type = ...> weight whose part is the raw rows, referenced
// in the mapped file.
#include <regex>

#include "import/importer.h"
#include "io/ggml_types.h"
#include "io/gguf.h"
#include "ir/weight_type.h"
#include "schemes/gguf/blocks.h"

namespace qlc::schemes {
namespace {

/// GGUF tensor base name (without ".weight"/".bias") -> HF-style module name and kind.
std::pair<std::string, ModuleKind> mapName(const std::string &base) {
  static const std::map<std::string, std::pair<std::string, ModuleKind>> global = {
      {"token_embd", {"model.embed_tokens", ModuleKind::Embedding}},
      {"output_norm", {"model.norm", ModuleKind::Norm}},
      {"output", {"lm_head", ModuleKind::Linear}},
  };
  static const std::map<std::string, std::pair<std::string, ModuleKind>> perBlock = {
      {"attn_norm", {"input_layernorm", ModuleKind::Norm}},
      {"ffn_norm", {"post_attention_layernorm", ModuleKind::Norm}},
      {"attn_q", {"self_attn.q_proj", ModuleKind::Linear}},
      {"attn_k", {"self_attn.k_proj", ModuleKind::Linear}},
      {"attn_v", {"self_attn.v_proj", ModuleKind::Linear}},
      {"attn_output", {"self_attn.o_proj", ModuleKind::Linear}},
      {"ffn_gate", {"mlp.gate_proj", ModuleKind::Linear}},
      {"ffn_up", {"mlp.up_proj", ModuleKind::Linear}},
      {"ffn_down", {"mlp.down_proj", ModuleKind::Linear}},
      {"ffn_gate_inp", {"mlp.gate", ModuleKind::Linear}},
      {"ffn_gate_exps", {"mlp.experts.gate_proj", ModuleKind::Linear}},
      {"ffn_up_exps", {"mlp.experts.up_proj", ModuleKind::Linear}},
      {"ffn_down_exps", {"mlp.experts.down_proj", ModuleKind::Linear}},
  };
  if (auto it = global.find(base); it != global.end())
    return it->second;
  static const std::regex blk(R"(^blk\.(\d+)\.(.+)$)");
  std::smatch m;
  if (std::regex_match(base, m, blk))
    if (auto it = perBlock.find(m[2].str()); it != perBlock.end())
      return {"model.layers." + m[1].str() + "." + it->second.first, it->second.second};
  return {"gguf." + base, ModuleKind::Linear}; // kept, under its own name
}

llvm::Expected<ImportedWeight> weightOf(const io::GgufFile &f, const io::GgufTensorInfo &t) {
  const io::GgmlTypeTraits *tr = io::ggmlTypeTraits(t.ggmlType);
  if (!tr) // the reader rejects these already; kept for safety
    return importError(f.path() + ": tensor '" + t.name + "' has unknown ggml type " +
                       llvm::Twine(t.ggmlType));
  if (t.ne.empty() || t.ne.size() > 3)
    return importError(f.path() + ": tensor '" + t.name + "' has " + llvm::Twine(t.ne.size()) +
                       " dims; weights have 1 to 3");
  // ne is innermost-first; the IR's shapes are outermost-first.
  std::vector<int64_t> dims(t.ne.rbegin(), t.ne.rend());
  ImportedWeight w;
  std::optional<ElemKind> dense;
  if (tr->name == "F32")
    dense = ElemKind::F32;
  else if (tr->name == "F16")
    dense = ElemKind::F16;
  else if (tr->name == "BF16")
    dense = ElemKind::BF16;
  if (dense) {
    TensorType type(*dense, dims);
    w.type = type;
    w.parts.push_back({"data", type, {t.name}, nullptr, {}});
    return w;
  }
  if (!gguf::hasBlockCodec(t.ggmlType) || !tr->quantized)
    return importError(f.path() + ": tensor '" + t.name + "' has ggml type " + tr->name +
                       ", which qlc does not import (supported: F32, F16, BF16, Q4_0, Q4_1, "
                       "Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K)");
  if (dims.size() == 1)
    return importError(f.path() + ": tensor '" + t.name + "' is a quantized vector");
  const WeightTypeDef *def = WeightTypeRegistry::get().lookup("gguf");
  int64_t n = dims[dims.size() - 2], k = dims.back();
  AttrDict params{{"type", Attribute::ident(tr->name.str())},
                  {"shape", Attribute(std::vector<int64_t>{n, k})}};
  if (dims.size() == 3)
    params["experts"] = Attribute(dims[0]);
  std::string err;
  auto type = WeightTypeRegistry::get().build(def, params, err);
  if (!type)
    return importError(f.path() + ": tensor '" + t.name + "': " + err);
  w.type = *type;
  std::vector<PartSpec> parts = type->expectedParts();
  for (const PartSpec &ps : parts)
    w.parts.push_back({ps.name, TensorType(ps.elems.front(), ps.shape), {t.name}, nullptr, {}});
  return w;
}

int64_t metaInt(const io::GgufFile &f, const std::string &key, int64_t dflt) {
  if (const io::GgufValue *v = f.find(key))
    if (auto i = v->asInt())
      return *i;
  return dflt;
}

llvm::Expected<ImportedModel> readGguf(llvm::StringRef path) {
  auto fileOr = io::GgufFile::open(path);
  if (!fileOr)
    return fileOr.takeError();
  const io::GgufFile &f = **fileOr;
  ImportedModel model;
  model.checkpoint = path.str();
  std::string arch = "llama";
  if (const io::GgufValue *v = f.find("general.architecture"))
    if (auto s = v->asString())
      arch = *s;
  model.info.architecture = arch;
  model.info.scheme = "gguf";
  model.info.numLayers = metaInt(f, arch + ".block_count", 0);
  model.info.hiddenSize = metaInt(f, arch + ".embedding_length", 0);
  model.info.numExperts = metaInt(f, arch + ".expert_count", 0);
  model.info.topK = metaInt(f, arch + ".expert_used_count", 0);
  model.info.topKSource = arch + ".expert_used_count";
  if (const io::GgufValue *v = f.find(arch + ".attention.layer_norm_rms_epsilon"))
    if (auto d = v->asFloat())
      model.info.rmsEps = *d;
  // llama.cpp renormalises top-k weights for llama-architecture MoE (Mixtral) and where the file
  // says so (expert_weights_norm); Qwen2-MoE does not.
  model.info.renormalize = arch == "llama";
  if (const io::GgufValue *v = f.find(arch + ".expert_weights_norm"))
    if (auto b = v->asBool())
      model.info.renormalize = *b;

  std::map<std::string, ImportedModule> modules;
  std::vector<const io::GgufTensorInfo *> biases;
  for (const io::GgufTensorInfo &t : f.tensors()) {
    llvm::StringRef name = t.name;
    if (name.ends_with(".bias")) {
      biases.push_back(&t);
      continue;
    }
    std::string base = name.ends_with(".weight") ? name.drop_back(7).str() : name.str();
    auto [hf, kind] = mapName(base);
    auto w = weightOf(f, t);
    if (!w)
      return w.takeError();
    ImportedModule mod;
    mod.name = hf;
    mod.kind = kind;
    mod.weight = std::move(*w);
    if (!modules.emplace(hf, std::move(mod)).second)
      return importError(path + ": two tensors map to '" + hf + "' (one is '" + t.name + "')");
  }
  for (const io::GgufTensorInfo *b : biases) {
    auto [hf, kind] = mapName(llvm::StringRef(b->name).drop_back(5).str());
    auto it = modules.find(hf);
    if (it == modules.end())
      continue;
    auto w = weightOf(f, *b);
    if (!w)
      return w.takeError();
    it->second.bias = std::move(*w);
  }
  // The block count must describe the tensors (a file claiming 2^32 blocks is malformed, and
  // loaders that trust it loop or allocate for that many).
  int64_t blocks = 0;
  for (const io::GgufTensorInfo &t : f.tensors()) {
    llvm::StringRef n = t.name;
    int64_t b;
    if (n.consume_front("blk.") && !n.consumeInteger(10, b) && n.starts_with("."))
      blocks = std::max(blocks, b + 1);
  }
  if (f.find(arch + ".block_count") && model.info.numLayers != blocks)
    return importError(path + ": '" + arch + ".block_count' = " +
                       llvm::Twine(model.info.numLayers) + " but the file has tensors for " +
                       llvm::Twine(blocks) + " blocks");
  for (auto &[n, mod] : modules)
    model.modules.push_back(std::move(mod));
  return model;
}

} // namespace

void registerGgufImport() { registerContainerProvider(".gguf", readGguf); }

} // namespace qlc::schemes
