// Import of compressed-tensors `pack-quantized` (WNA16) safetensors checkpoints (FORMATS.md §3.3,
// §3.4): every Linear with a `<prefix>.weight_packed` becomes !ct_wna16<...> over weight_packed /
// weight_scale (/ weight_zero_point / weight_g_idx / weight_shape).
#include <cstring>

#include "schemes/common/safetensors_import.h"

namespace qlc::schemes {
namespace {

using namespace stimport;

struct CtGroup {
  std::string name;
  std::vector<std::string> targets;
  int64_t bits = 4;
  std::string strategy = "group";
  int64_t group = 0;
  bool symmetric = true;
  std::string actorder = "none";
};

/// compressed-tensors matching: "re:<pattern>" is re.match on the module name; anything else is an
/// exact module name, or (targets only) a module class name such as "Linear".
bool matches(const std::string &target, const std::string &prefix, bool classNames) {
  if (llvm::StringRef(target).starts_with("re:"))
    return reMatch(target.substr(3), prefix);
  if (target == prefix)
    return true;
  return classNames && target == "Linear";
}

class CtScheme : public SafetensorsScheme {
public:
  std::string name() const override { return "compressed-tensors"; }

  bool recognizes(const llvm::json::Object &q) const override {
    auto m = q.getString("quant_method");
    return m && lower(*m) == "compressed-tensors";
  }

  llvm::Error configure(const llvm::json::Object &q, llvm::StringRef file) override {
    file_ = file.str();
    groups_.clear();
    ignore_.clear();
    std::string globalFormat;
    if (auto f = q.getString("format"))
      globalFormat = f->str();
    if (const llvm::json::Value *v = q.get("ignore"); v && v->kind() != llvm::json::Value::Null) {
      const llvm::json::Array *a = v->getAsArray();
      if (!a)
        return importError(file + ": compressed-tensors 'ignore' must be a list of names");
      for (const llvm::json::Value &e : *a)
        if (auto s = e.getAsString())
          ignore_.push_back(s->str());
        else
          return importError(file + ": compressed-tensors 'ignore' must be a list of names");
    }
    const llvm::json::Object *groups = q.getObject("config_groups");
    if (!groups || groups->empty())
      return importError(file + ": compressed-tensors quantization_config has no config_groups");
    // Deterministic order: config_groups is a JSON object; compressed-tensors iterates it in file
    // order, llvm::json in hash order, so sort by name (group_0, group_1, ...).
    std::vector<std::string> names;
    for (const auto &[k, v] : *groups)
      names.push_back(k.str());
    std::sort(names.begin(), names.end());
    for (const std::string &gname : names) {
      const llvm::json::Object *g = groups->getObject(gname);
      std::string where = file_ + ": config_groups." + gname;
      if (!g)
        return importError(where + " is not an object");
      std::string format = globalFormat;
      if (auto f = g->getString("format"))
        format = f->str();
      if (format.empty())
        return importError(where + " has no compression format (set 'format': 'pack-quantized')");
      if (format != "pack-quantized")
        return importError(where + ": compressed-tensors format '" + format +
                           "' is not supported (qlc reads pack-quantized)");
      CtGroup cg;
      cg.name = gname;
      if (const llvm::json::Array *t = g->getArray("targets"))
        for (const llvm::json::Value &e : *t)
          if (auto s = e.getAsString())
            cg.targets.push_back(s->str());
      if (cg.targets.empty())
        return importError(where + " has no targets");
      if (const llvm::json::Value *ia = g->get("input_activations");
          ia && ia->kind() != llvm::json::Value::Null)
        return importError(where + ": input_activations quantization is not supported (qlc reads "
                                   "weight-only WNA16 pack-quantized checkpoints)");
      const llvm::json::Object *w = g->getObject("weights");
      if (!w)
        return importError(where + " has no 'weights' quantization arguments");
      where += ".weights";
      if (auto t = w->getString("type"); t && *t != "int")
        return importError(where + ": type '" + *t +
                           "' is not supported (pack-quantized WNA16 has type int)");
      auto bits = intKey(*w, {"num_bits"}, file);
      if (!bits)
        return bits.takeError();
      cg.bits = bits->value_or(8);
      if (cg.bits != 4 && cg.bits != 8)
        return importError(where + ": num_bits = " + llvm::Twine(cg.bits) +
                           " is not supported (4 or 8)");
      auto sym = boolKey(*w, "symmetric", file);
      if (!sym)
        return sym.takeError();
      cg.symmetric = sym->value_or(true);
      if (auto s = w->getString("strategy"))
        cg.strategy = s->str();
      auto gs = intKey(*w, {"group_size"}, file);
      if (!gs)
        return gs.takeError();
      if (cg.strategy == "group") {
        if (!*gs)
          return importError(where + ": strategy 'group' needs a group_size");
        cg.group = **gs;
      } else if (cg.strategy != "channel") {
        return importError(where + ": strategy '" + cg.strategy +
                           "' is not supported (group or channel)");
      }
      if (const llvm::json::Value *dyn = w->get("dynamic"))
        if (auto b = dyn->getAsBoolean(); b && *b)
          return importError(where + ": dynamic weight quantization is not a checkpoint layout");
      if (const llvm::json::Value *ao = w->get("actorder");
          ao && ao->kind() != llvm::json::Value::Null) {
        if (auto b = ao->getAsBoolean()) {
          cg.actorder = *b ? "group" : "none";
        } else if (auto s = ao->getAsString()) {
          std::string a = lower(*s);
          if (a == "dynamic")
            a = "group";
          else if (a == "static")
            a = "weight";
          if (a != "group" && a != "weight")
            return importError(where + ": actorder '" + s->str() +
                               "' is unknown (group, weight, or null)");
          cg.actorder = a;
        } else {
          return importError(where + ": actorder must be a string, a bool or null");
        }
      }
      groups_.push_back(std::move(cg));
    }
    return llvm::Error::success();
  }

  llvm::Expected<std::optional<ImportedWeight>>
  importLinear(const io::SafetensorsCheckpoint &ckpt, llvm::StringRef prefixRef) override {
    std::string prefix = prefixRef.str();
    for (const std::string &ig : ignore_)
      if (matches(ig, prefix, /*classNames=*/false))
        return std::optional<ImportedWeight>();
    std::string file = fileOfModule(ckpt, prefix, {".weight_packed"});
    // The first config group whose targets name the module (exact names and regexes before the
    // "Linear" class, as compressed-tensors' match order does).
    const CtGroup *cg = nullptr;
    for (const CtGroup &g : groups_)
      for (const std::string &t : g.targets)
        if (!cg && t != "Linear" && matches(t, prefix, false))
          cg = &g;
    for (const CtGroup &g : groups_)
      for (const std::string &t : g.targets)
        if (!cg && t == "Linear")
          cg = &g;
    if (!cg)
      return importError(file + ": module '" + prefix +
                         "' has a weight_packed tensor but no config group of " + file_ +
                         " targets it");
    auto wp = need(ckpt, prefix, "weight_packed", file, "compressed-tensors");
    if (!wp)
      return wp.takeError();
    if (llvm::Error e = checkTensor(ckpt, **wp, {ElemKind::I32}, 2))
      return e;
    if (auto sc = need(ckpt, prefix, "weight_scale", file, "compressed-tensors"); !sc)
      return sc.takeError();
    if (!cg->symmetric)
      if (auto zp = need(ckpt, prefix, "weight_zero_point", file,
                         "asymmetric compressed-tensors");
          !zp)
        return zp.takeError();
    if (cg->actorder == "group")
      if (auto gi = need(ckpt, prefix, "weight_g_idx", file, "compressed-tensors actorder=group");
          !gi)
        return gi.takeError();
    // N, K: from weight_shape when present (K is padded in weight_packed), else weight_packed.
    int64_t pf = 32 / cg->bits;
    int64_t n = (*wp)->shape[0], k = (*wp)->shape[1] * pf;
    if (const io::TensorView *ws = ckpt.find(prefix + ".weight_shape")) {
      if (llvm::Error e = checkTensor(ckpt, *ws, {ElemKind::I64, ElemKind::I32}, 1))
        return e;
      if (ws->shape[0] != 2)
        return importError(ckpt.fileOf(ws->name) + ": tensor '" + ws->name + "' has shape " +
                           shapeStr(ws->shape) + ", expected [2] = [N, K]");
      int64_t v[2];
      for (int i = 0; i < 2; ++i) {
        if (ws->dtype == io::DType::I64) {
          std::memcpy(&v[i], ws->data.data() + 8 * i, 8);
        } else {
          int32_t x;
          std::memcpy(&x, ws->data.data() + 4 * i, 4);
          v[i] = x;
        }
      }
      if (v[0] != n || v[1] <= 0 || (v[1] + pf - 1) / pf != (*wp)->shape[1])
        return importError(ckpt.fileOf(ws->name) + ": tensor '" + ws->name + "' says [N, K] = [" +
                           llvm::Twine(v[0]) + ", " + llvm::Twine(v[1]) +
                           "] but weight_packed has shape " + shapeStr((*wp)->shape));
      k = v[1];
    }
    AttrDict params{{"bits", Attribute(cg->bits)},
                    {"strategy", Attribute::ident(cg->strategy)},
                    {"group", Attribute(cg->group)},
                    {"symmetric", Attribute(cg->symmetric)},
                    {"actorder", Attribute::ident(cg->actorder)},
                    {"shape", Attribute(std::vector<int64_t>{n, k})}};
    std::string g = cg->strategy == "channel" ? "1 column (channel)"
                    : cg->group == -1         ? "1 group"
                                              : "K/G = " + std::to_string(k) + "/" +
                                            std::to_string(cg->group) + " columns";
    auto w = buildWeight(ckpt, prefix, file, "ct_wna16", params,
                         {{"weight_scale", "rows = N, " + g},
                          {"weight_zero_point", "rows = ceil(N*bits/32), " + g},
                          {"weight_g_idx", "one group index per input column k"}});
    if (!w)
      return w.takeError();
    return std::optional<ImportedWeight>(std::move(*w));
  }

  std::vector<std::string> moduleSuffixes() const override { return {".weight_packed"}; }

private:
  std::string file_;
  std::vector<CtGroup> groups_;
  std::vector<std::string> ignore_;
};

} // namespace

void registerCompressedTensorsImport() {
  registerSafetensorsScheme([] { return std::make_unique<CtScheme>(); });
}

} // namespace qlc::schemes
