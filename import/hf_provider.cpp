// The safetensors provider: a HF-style model directory (or one .safetensors file) with its
// config.json. Module prefixes are found from tensor names; the scheme named by the quantization
// config imports each quantized Linear; per-expert modules are stacked.
#include <map>
#include <regex>
#include <set>

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

#include "import/importer.h"
#include "io/dtype.h"
#include "io/quant_config.h"
#include "io/safetensors.h"

namespace qlc {
namespace {


/// A dense tensor imported as is (norms, routers, unquantized linears, embeddings).
llvm::Expected<ImportedWeight> denseWeight(const io::SafetensorsCheckpoint &ckpt,
                                           const io::TensorView &t) {
  auto e = io::elemKindOf(t.dtype);
  if (!e || !isFloat(*e))
    return importError(ckpt.fileOf(t.name) + ": tensor '" + t.name + "' has dtype " +
                       io::safetensorsName(t.dtype) +
                       ", which is not a float type a dense weight can have");
  TensorType type(*e, t.shape);
  ImportedWeight w;
  w.type = type;
  w.parts.push_back({"data", type, {t.name}, nullptr, {}});
  return w;
}

int64_t jsonInt(const llvm::json::Object &o, std::initializer_list<const char *> keys,
                int64_t dflt) {
  for (const char *k : keys)
    if (auto v = o.getInteger(k))
      return *v;
  return dflt;
}

/// Mixtral names experts w1/w3/w2 under block_sparse_moe; the IR uses the Qwen/DeepSeek names.
std::string canonicalName(std::string name) {
  static const std::regex moe(R"(\.block_sparse_moe(\.|$))");
  name = std::regex_replace(name, moe, ".mlp$1");
  static const std::regex w(R"(\.experts\.(\d+)\.w([123])$)");
  std::smatch m;
  if (std::regex_search(name, m, w)) {
    const char *proj = m[2] == "1" ? "gate_proj" : m[2] == "3" ? "up_proj" : "down_proj";
    name = m.prefix().str() + ".experts." + m[1].str() + "." + proj;
  }
  return name;
}

} // namespace

llvm::Expected<ImportedModel> readSafetensorsModel(llvm::StringRef path) {
  auto ckptOr = io::SafetensorsCheckpoint::open(path);
  if (!ckptOr)
    return ckptOr.takeError();
  const io::SafetensorsCheckpoint &ckpt = **ckptOr;
  std::string dir = llvm::sys::fs::is_directory(path) ? path.str()
                                                       : llvm::sys::path::parent_path(path).str();
  if (dir.empty())
    dir = ".";
  auto cfgOr = io::loadQuantConfig(dir);
  if (!cfgOr)
    return cfgOr.takeError();
  io::QuantConfigSource &cfg = *cfgOr;

  ImportedModel model;
  model.checkpoint = path.str();
  const llvm::json::Object &mc = cfg.modelConfig;
  if (auto t = mc.getString("model_type"))
    model.info.architecture = t->str();
  model.info.numLayers = jsonInt(mc, {"num_hidden_layers", "n_layer"}, 0);
  model.info.hiddenSize = jsonInt(mc, {"hidden_size", "n_embd"}, 0);
  model.info.numExperts = jsonInt(mc, {"num_local_experts", "num_experts", "n_routed_experts"}, 0);
  model.info.topK = jsonInt(mc, {"num_experts_per_tok", "moe_topk"}, 0);
  model.info.topKSource = "config.json num_experts_per_tok";
  if (auto r = mc.getBoolean("norm_topk_prob"))
    model.info.renormalize = *r;
  else
    model.info.renormalize = model.info.architecture == "mixtral"; // Mixtral renormalises top-k
  if (auto eps = mc.getNumber("rms_norm_eps"))
    model.info.rmsEps = *eps;

  // The scheme.
  std::unique_ptr<SafetensorsScheme> scheme;
  if (!cfg.quantization.empty()) {
    std::string known;
    for (auto &s : createSafetensorsSchemes()) {
      known += (known.empty() ? "" : ", ") + s->name();
      if (!scheme && s->recognizes(cfg.quantization))
        scheme = std::move(s);
    }
    if (!scheme) {
      std::string method = "(none)";
      if (auto qm = cfg.quantization.getString("quant_method"))
        method = qm->str();
      return importError(cfg.file + ": unknown quant_method '" + method +
                         "': no registered scheme reads it (registered: " + known + ")");
    }
    if (llvm::Error e = scheme->configure(cfg.quantization, cfg.file))
      return e;
  }
  model.info.scheme = scheme ? scheme->name() : "dense";

  // Module prefixes: the scheme's marker suffixes first, then plain ".weight" tensors.
  std::vector<std::string> suffixes = scheme ? scheme->moduleSuffixes() : std::vector<std::string>{};
  std::set<std::string> schemePrefixes, densePrefixes;
  for (const io::TensorView *t : ckpt.tensors()) {
    llvm::StringRef n = t->name;
    bool claimed = false;
    for (const std::string &s : suffixes)
      if (n.ends_with(s)) {
        schemePrefixes.insert(n.drop_back(s.size()).str());
        claimed = true;
      }
    if (!claimed && n.ends_with(".weight"))
      densePrefixes.insert(n.drop_back(7).str());
  }
  std::map<std::string, ImportedModule> modules; // by canonical name
  auto addModule = [&](const std::string &prefix, ImportedWeight w, ModuleKind kind) {
    ImportedModule mod;
    mod.name = canonicalName(prefix);
    mod.kind = kind;
    mod.weight = std::move(w);
    if (const io::TensorView *b = ckpt.find(prefix + ".bias")) {
      auto bw = denseWeight(ckpt, *b);
      if (bw)
        mod.bias = std::move(*bw);
      else
        llvm::consumeError(bw.takeError());
    }
    modules[mod.name] = std::move(mod);
  };
  for (const std::string &prefix : schemePrefixes) {
    auto w = scheme->importLinear(ckpt, prefix);
    if (!w)
      return w.takeError();
    if (*w)
      addModule(prefix, std::move(**w), ModuleKind::Linear);
    else
      densePrefixes.insert(prefix); // the scheme leaves it unquantized
  }
  for (const std::string &prefix : densePrefixes) {
    if (schemePrefixes.count(prefix) && modules.count(canonicalName(prefix)))
      continue;
    const io::TensorView *t = ckpt.find(prefix + ".weight");
    if (!t)
      return importError(path + ": module '" + prefix + "' has no tensor '" + prefix + ".weight'");
    if (t->shape.size() != 1 && t->shape.size() != 2)
      continue; // convolutions and the like are not part of the IR
    auto w = denseWeight(ckpt, *t);
    if (!w)
      return w.takeError();
    ModuleKind kind = t->shape.size() == 1 ? ModuleKind::Norm
                      : (llvm::StringRef(prefix).contains("embed_tokens") ||
                         llvm::StringRef(prefix).ends_with(".wte"))
                          ? ModuleKind::Embedding
                          : ModuleKind::Linear;
    addModule(prefix, std::move(*w), kind);
  }

  // Stack experts: "<base>.experts.<e>.<proj>" -> "<base>.experts.<proj>".
  static const std::regex expertRe(R"(^(.*)\.experts\.(\d+)\.([A-Za-z0-9_]+)$)");
  std::map<std::string, std::map<int64_t, std::string>> stacks; // stacked name -> e -> module
  for (const auto &[name, mod] : modules) {
    std::smatch m;
    if (std::regex_match(name, m, expertRe))
      stacks[m[1].str() + ".experts." + m[3].str()][std::stoll(m[2].str())] = name;
  }
  for (const auto &[stackName, byExpert] : stacks) {
    std::vector<ImportedWeight> ws;
    int64_t expect = 0;
    for (const auto &[e, name] : byExpert) {
      if (e != expect)
        return importError(path + ": " + stackName + ": expert " + llvm::Twine(expect) +
                           " is missing (experts must be numbered 0..E-1)");
      ++expect;
      ws.push_back(modules.at(name).weight);
    }
    auto stacked = stackExperts(ws, (path + ": " + stackName).str());
    if (!stacked)
      return stacked.takeError();
    for (const auto &[e, name] : byExpert)
      modules.erase(name);
    ImportedModule mod;
    mod.name = stackName;
    mod.weight = std::move(*stacked);
    modules[stackName] = std::move(mod);
    if (!model.info.numExperts)
      model.info.numExperts = expect;
  }
  for (auto &[name, mod] : modules)
    model.modules.push_back(std::move(mod));
  if (!model.info.numLayers) { // no config.json: count the layers present
    static const std::regex layerRe(R"(^model\.layers\.(\d+)\.)");
    for (const ImportedModule &mod : model.modules) {
      std::smatch m;
      if (std::regex_search(mod.name, m, layerRe))
        model.info.numLayers = std::max<int64_t>(model.info.numLayers, std::stoll(m[1].str()) + 1);
    }
  }
  return model;
}

} // namespace qlc
