#include "import/importer.h"
#include "import/export.h"

#include <map>
#include <mutex>
#include <set>

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

#include "ir/op_registry.h"

namespace qlc {

llvm::Error importError(const llvm::Twine &msg) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), msg);
}

//===----------------------------------------------------------------------===//
// Registries
//===----------------------------------------------------------------------===//

static std::vector<std::function<std::unique_ptr<SafetensorsScheme>()>> &schemeFactories() {
  static std::vector<std::function<std::unique_ptr<SafetensorsScheme>()>> f;
  return f;
}

void registerSafetensorsScheme(std::function<std::unique_ptr<SafetensorsScheme>()> factory) {
  schemeFactories().push_back(std::move(factory));
}

std::vector<std::unique_ptr<SafetensorsScheme>> createSafetensorsSchemes() {
  std::vector<std::unique_ptr<SafetensorsScheme>> v;
  for (auto &f : schemeFactories())
    v.push_back(f());
  return v;
}

static std::map<std::string, ContainerProvider> &containerProviders() {
  static std::map<std::string, ContainerProvider> p;
  return p;
}

void registerContainerProvider(std::string extension, ContainerProvider provider) {
  containerProviders()[std::move(extension)] = std::move(provider);
}

llvm::Expected<ImportedModel> readSafetensorsModel(llvm::StringRef path); // hf_provider.cpp

llvm::Expected<ImportedModel> readCheckpoint(llvm::StringRef path) {
  if (!llvm::sys::fs::exists(path))
    return importError(path + ": no such file or directory");
  for (const auto &[ext, provider] : containerProviders())
    if (path.ends_with(ext))
      return provider(path);
  return readSafetensorsModel(path);
}

//===----------------------------------------------------------------------===//
// Expert stacking
//===----------------------------------------------------------------------===//

llvm::Expected<ImportedWeight> stackExperts(const std::vector<ImportedWeight> &experts,
                                            llvm::StringRef what) {
  if (experts.empty())
    return importError(what + ": no experts");
  const ImportedWeight &first = experts[0];
  int64_t e = int64_t(experts.size());
  for (size_t i = 1; i < experts.size(); ++i) {
    if (weightSymbolTypeStr(experts[i].type) != weightSymbolTypeStr(first.type))
      return importError(what + ": expert " + llvm::Twine(i) + " is " +
                         weightSymbolTypeStr(experts[i].type) + " but expert 0 is " +
                         weightSymbolTypeStr(first.type));
    if (experts[i].parts.size() != first.parts.size())
      return importError(what + ": expert " + llvm::Twine(i) + " has different parts");
  }
  ImportedWeight out;
  if (auto *t = std::get_if<TensorType>(&first.type)) {
    TensorType s = *t;
    s.dims.insert(s.dims.begin(), e);
    out.type = s;
  } else {
    WeightType wt = std::get<WeightType>(first.type);
    if (wt.experts())
      return importError(what + ": expert weights are already stacked");
    wt.params["experts"] = Attribute(e);
    out.type = wt;
  }
  for (size_t p = 0; p < first.parts.size(); ++p) {
    WeightPart part = first.parts[p];
    part.type.dims.insert(part.type.dims.begin(), e);
    part.sources.clear();
    for (size_t i = 0; i < experts.size(); ++i) {
      const WeightPart &ep = experts[i].parts[p];
      if (ep.name != part.name || ep.type != first.parts[p].type || ep.sources.size() != 1)
        return importError(what + ": part '" + ep.name + "' of expert " + llvm::Twine(i) +
                           " does not match expert 0 (" + first.parts[p].type.str() + ")");
      part.sources.push_back(ep.sources[0]);
    }
    out.parts.push_back(std::move(part));
  }
  return out;
}

//===----------------------------------------------------------------------===//
// Assembly
//===----------------------------------------------------------------------===//

namespace {

class FunctionBuilder {
public:
  FunctionBuilder(Module &m, std::string name, std::string checkpoint)
      : m_(m), checkpoint_(std::move(checkpoint)) {
    registerCoreOps();
    f_ = std::make_unique<Function>(std::move(name), Location{});
  }
  Value *arg(TensorType t, std::string name) { return f_->addArgument(std::move(t), std::move(name)); }

  /// Appends an op whose result types are inferred; returns its first result.
  llvm::Expected<Value *> op(const char *name, std::vector<Value *> operands,
                             std::vector<std::string> symbols, AttrDict attrs = {},
                             std::string resultName = "") {
    auto o = std::make_unique<Operation>(OpRegistry::get().lookup(name), Location{});
    o->setOperands(std::move(operands));
    o->setSymbols(std::move(symbols));
    o->attrs() = std::move(attrs);
    std::string err;
    auto types = inferResultTypes(*o, m_, nullptr, err);
    if (!types)
      return importError(checkpoint_ + ": the weights of @" + f_->name() +
                         " do not fit together: " + err);
    Value *first = nullptr;
    for (size_t i = 0; i < types->size(); ++i) {
      Value *v = o->addResult((*types)[i], i == 0 ? resultName : "");
      if (!first)
        first = v;
    }
    f_->append(std::move(o));
    return first;
  }

  void finish(Value *result) {
    auto ret = std::make_unique<Operation>(OpRegistry::get().lookup("return"), Location{});
    ret->setOperands({result});
    f_->setResultTypes({result->type()});
    f_->append(std::move(ret));
    m_.addFunction(std::move(f_));
  }

private:
  Module &m_;
  std::string checkpoint_;
  std::unique_ptr<Function> f_;
};

const int64_t kDyn = TensorType::kDynamic;

} // namespace

llvm::Expected<std::unique_ptr<Module>> assembleModule(const ImportedModel &model) {
  auto m = std::make_unique<Module>();
  llvm::SmallString<256> abs(model.checkpoint);
  llvm::sys::fs::make_absolute(abs);
  m->attrs()["checkpoint"] = Attribute(std::string(abs));
  std::set<std::string> names;
  auto addWeight = [&](const std::string &name, const ImportedWeight &iw) -> llvm::Error {
    auto w = std::make_unique<Weight>(name, iw.type, Location{});
    w->parts() = iw.parts;
    if (!m->addWeight(std::move(w)))
      return importError("two checkpoint modules map to the weight name '" + name + "'");
    names.insert(name);
    return llvm::Error::success();
  };
  for (const ImportedModule &mod : model.modules) {
    if (llvm::Error e = addWeight(mod.name, mod.weight))
      return e;
    if (mod.bias)
      if (llvm::Error e = addWeight(mod.name + ".bias", *mod.bias))
        return e;
  }
  auto has = [&](const std::string &n) { return names.count(n) != 0; };
  auto biasOf = [&](const std::string &n) {
    std::vector<std::string> s{n};
    if (has(n + ".bias"))
      s.push_back(n + ".bias");
    return s;
  };
  // The last (K) dim of a weight that must have `rank` logical dims: a hostile checkpoint can give
  // any module any rank, so it is checked before it is indexed.
  auto lastDim = [&](const std::string &n, size_t rank) -> llvm::Expected<int64_t> {
    const std::vector<int64_t> &s = m->lookupWeight(n)->logicalShape();
    if (s.size() != rank)
      return importError(model.checkpoint + ": weight '" + n + "' has " + llvm::Twine(s.size()) +
                         " logical dims, expected " + llvm::Twine(rank));
    return s.back();
  };
  // Hidden size: from the model info, else the K of the first MLP / embedding dim.
  int64_t hidden = model.info.hiddenSize;

  if (has("model.embed_tokens")) {
    FunctionBuilder fb(*m, "embed", model.checkpoint);
    Value *ids = fb.arg(TensorType(ElemKind::I32, {kDyn}), "ids");
    auto y = fb.op("embedding", {ids}, {"model.embed_tokens"}, {}, "y");
    if (!y)
      return y.takeError();
    fb.finish(*y);
    if (!hidden) {
      auto k = lastDim("model.embed_tokens", 2);
      if (!k)
        return k.takeError();
      hidden = *k;
    }
  }
  // Blocks are found from the weights present (a layer count in the config is not trusted: a
  // hostile file could claim 2^32 layers).
  std::set<int64_t> layers;
  for (const ImportedModule &mod : model.modules) {
    llvm::StringRef n = mod.name;
    if (!n.consume_front("model.layers."))
      continue;
    int64_t l;
    if (!n.consumeInteger(10, l) && n.starts_with("."))
      layers.insert(l);
  }
  for (int64_t l : layers) {
    std::string p = "model.layers." + std::to_string(l) + ".mlp";
    if (has(p + ".gate_proj") && has(p + ".up_proj") && has(p + ".down_proj")) {
      auto hk = lastDim(p + ".gate_proj", 2);
      if (!hk)
        return hk.takeError();
      int64_t h = *hk;
      FunctionBuilder fb(*m, p, model.checkpoint);
      Value *x = fb.arg(TensorType(ElemKind::F32, {kDyn, h}), "x");
      auto g = fb.op("linear", {x}, biasOf(p + ".gate_proj"), {}, "gate");
      if (!g)
        return g.takeError();
      auto u = fb.op("linear", {x}, biasOf(p + ".up_proj"), {}, "up");
      if (!u)
        return u.takeError();
      auto a = fb.op("silu", {*g}, {}, {}, "act");
      if (!a)
        return a.takeError();
      auto h2 = fb.op("mul", {*a, *u}, {}, {}, "h");
      if (!h2)
        return h2.takeError();
      auto y = fb.op("linear", {*h2}, biasOf(p + ".down_proj"), {}, "y");
      if (!y)
        return y.takeError();
      fb.finish(*y);
    }
    std::string ex = p + ".experts";
    if (has(ex + ".gate_proj") && has(ex + ".up_proj") && has(ex + ".down_proj") &&
        has(p + ".gate")) {
      const Weight *gate = m->lookupWeight(ex + ".gate_proj");
      auto hk = lastDim(ex + ".gate_proj", 3);
      if (!hk)
        return hk.takeError();
      int64_t h = *hk, e = gate->experts();
      int64_t topK = model.info.topK > 0 ? model.info.topK : std::min<int64_t>(2, e);
      if (topK > e)
        return importError(model.checkpoint + ": " +
                           (model.info.topKSource.empty() ? std::string("top_k")
                                                          : model.info.topKSource) +
                           " = " + llvm::Twine(topK) + " exceeds the " + llvm::Twine(e) +
                           " experts of " + ex);
      FunctionBuilder fb(*m, p.substr(0, p.size() - 4) + ".moe", model.checkpoint);
      Value *x = fb.arg(TensorType(ElemKind::F32, {kDyn, h}), "x");
      auto logits = fb.op("linear", {x}, {p + ".gate"}, {}, "router_logits");
      if (!logits)
        return logits.takeError();
      AttrDict attrs{{"top_k", Attribute(topK)}};
      if (model.info.renormalize)
        attrs["renormalize"] = Attribute(true);
      auto y = fb.op("moe", {x, *logits}, {ex + ".gate_proj", ex + ".up_proj", ex + ".down_proj"},
                     attrs, "y");
      if (!y)
        return y.takeError();
      fb.finish(*y);
    }
  }
  if (has("lm_head")) {
    auto hk = lastDim("lm_head", 2);
    if (!hk)
      return hk.takeError();
    int64_t h = *hk;
    FunctionBuilder fb(*m, "lm_head", model.checkpoint);
    Value *x = fb.arg(TensorType(ElemKind::F32, {kDyn, h}), "x");
    auto y = fb.op("linear", {x}, biasOf("lm_head"), {}, "logits");
    if (!y)
      return y.takeError();
    fb.finish(*y);
  }
  return m;
}

llvm::Expected<std::unique_ptr<Module>> importCheckpoint(llvm::StringRef path) {
  // A directory written by `qlc export` carries its lowered IR.
  auto exported = readExportedCheckpoint(path);
  if (!exported)
    return exported.takeError();
  if (*exported)
    return std::move(*exported);
  auto model = readCheckpoint(path);
  if (!model)
    return model.takeError();
  return assembleModule(*model);
}

} // namespace qlc
