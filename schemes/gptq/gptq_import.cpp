// Import of AutoGPTQ / GPTQModel safetensors checkpoints (FORMATS.md §2.1, §2.5): every Linear with
// a `<prefix>.qweight` becomes !gptq<bits, group, sym, format, desc_act, shape = [N, K]> over
// qweight / qzeros / scales (/ g_idx).
#include "schemes/common/safetensors_import.h"

namespace qlc::schemes {
namespace {

using namespace stimport;

struct GptqParams {
  int64_t bits = 4, group = 128;
  bool sym = true, descAct = false;
};

class GptqScheme : public SafetensorsScheme {
public:
  std::string name() const override { return "gptq"; }

  bool recognizes(const llvm::json::Object &q) const override {
    if (auto m = q.getString("quant_method"))
      return lower(*m) == "gptq";
    // Old AutoGPTQ quantize_config.json files have no quant_method.
    return !q.get("quant_method") && q.get("bits") && q.get("desc_act");
  }

  llvm::Error configure(const llvm::json::Object &q, llvm::StringRef file) override {
    file_ = file.str();
    auto p = readParams(q, GptqParams{}, file, "");
    if (!p)
      return p.takeError();
    base_ = *p;
    std::string fmt = "gptq";
    if (const llvm::json::Value *v = q.get("checkpoint_format");
        v && v->kind() != llvm::json::Value::Null) {
      auto s = v->getAsString();
      if (!s)
        return importError(file + ": GPTQ 'checkpoint_format' must be a string");
      fmt = lower(*s);
    }
    auto marlin = boolKey(q, "is_marlin_format", file);
    if (!marlin)
      return marlin.takeError();
    if (marlin->value_or(false))
      fmt = "marlin";
    if (fmt == "gptq")
      format_ = "v1";
    else if (fmt == "gptq_v2")
      format_ = "v2";
    else if (fmt == "marlin")
      return importError(file + ": GPTQ checkpoint_format 'marlin' is not supported yet (qlc "
                                "reads gptq (v1) and gptq_v2 checkpoints)");
    else
      return importError(file + ": GPTQ checkpoint_format '" + fmt +
                         "' is unknown (qlc reads gptq (v1) and gptq_v2)");
    // GPTQModel `dynamic`: {regex: {overrides}}; a "-:" key skips the matching modules.
    dynamic_.clear();
    if (const llvm::json::Value *v = q.get("dynamic"); v && v->kind() != llvm::json::Value::Null) {
      const llvm::json::Object *d = v->getAsObject();
      if (!d)
        return importError(file + ": GPTQ 'dynamic' must be an object of regex -> overrides");
      for (const auto &[key, val] : *d) {
        Rule r;
        llvm::StringRef k = key;
        r.skip = k.consume_front("-:");
        k.consume_front("+:");
        r.pattern = k.str();
        try {
          (void)std::regex(r.pattern);
        } catch (const std::regex_error &) {
          return importError(file + ": GPTQ 'dynamic' key '" + key.str() +
                             "' is not a valid regex");
        }
        if (!r.skip) {
          const llvm::json::Object *o = val.getAsObject();
          if (!o)
            return importError(file + ": GPTQ 'dynamic' entry '" + key.str() +
                               "' must be an object");
          auto rp = readParams(*o, base_, file, " (dynamic '" + key.str() + "')");
          if (!rp)
            return rp.takeError();
          r.params = *rp;
        }
        dynamic_.push_back(std::move(r));
      }
    }
    return llvm::Error::success();
  }

  llvm::Expected<std::optional<ImportedWeight>>
  importLinear(const io::SafetensorsCheckpoint &ckpt, llvm::StringRef prefix) override {
    GptqParams p = base_;
    for (const Rule &r : dynamic_)
      if (reMatch(r.pattern, prefix.str())) {
        if (r.skip)
          return std::optional<ImportedWeight>();
        p = r.params;
        break;
      }
    std::string file = fileOfModule(ckpt, prefix, {".qweight"});
    auto qw = need(ckpt, prefix, "qweight", file, "GPTQ");
    if (!qw)
      return qw.takeError();
    if (llvm::Error e = checkTensor(ckpt, **qw, {ElemKind::I32}, 2))
      return e;
    auto sc = need(ckpt, prefix, "scales", file, "GPTQ");
    if (!sc)
      return sc.takeError();
    if (llvm::Error e = checkTensor(ckpt, **sc, {ElemKind::F16, ElemKind::BF16, ElemKind::F32}, 2))
      return e;
    if (auto zq = need(ckpt, prefix, "qzeros", file, "GPTQ"); !zq)
      return zq.takeError();
    if (p.descAct)
      if (auto gi = need(ckpt, prefix, "g_idx", file, "GPTQ desc_act"); !gi)
        return gi.takeError();
    // qweight [K*b/32, N] (3-bit: [K/32*3, N]); scales [ceil(K/G), N].
    int64_t rows = (*qw)->shape[0], n = (*sc)->shape[1];
    int64_t k = p.bits == 3 ? rows / 3 * 32 : rows * (32 / p.bits);
    if (p.bits == 3 && rows % 3)
      return importError(ckpt.fileOf((*qw)->name) + ": tensor '" + (*qw)->name +
                         "' has " + llvm::Twine(rows) +
                         " rows; 3-bit qweight has a multiple of 3 (32 codes per 3 words)");
    AttrDict params{{"bits", Attribute(p.bits)},
                    {"group", Attribute(p.group)},
                    {"sym", Attribute(p.sym)},
                    {"format", Attribute::ident(format_)},
                    {"desc_act", Attribute(p.descAct)},
                    {"shape", Attribute(std::vector<int64_t>{n, k})}};
    std::string g = p.group == -1 ? "1 group"
                                  : "ceil(K/G) = ceil(" + std::to_string(k) + "/" +
                                        std::to_string(p.group) + ")";
    auto w = buildWeight(ckpt, prefix, file, "gptq", params,
                         {{"qzeros", "rows = " + g + ", columns = N*bits/32"},
                          {"scales", "rows = " + g + ", columns = N"},
                          {"g_idx", "one group index per input row k"}});
    if (!w)
      return w.takeError();
    return std::optional<ImportedWeight>(std::move(*w));
  }

  std::vector<std::string> moduleSuffixes() const override { return {".qweight"}; }

private:
  struct Rule {
    std::string pattern;
    bool skip = false;
    GptqParams params;
  };

  static llvm::Expected<GptqParams> readParams(const llvm::json::Object &q, GptqParams p,
                                               llvm::StringRef file, const std::string &where) {
    auto bits = intKey(q, {"bits", "w_bit"}, file);
    if (!bits)
      return bits.takeError();
    if (*bits)
      p.bits = **bits;
    if (p.bits != 2 && p.bits != 3 && p.bits != 4 && p.bits != 8)
      return importError(file + ": GPTQ bits = " + llvm::Twine(p.bits) + where +
                         " is not supported (2, 3, 4 or 8)");
    auto group = intKey(q, {"group_size", "q_group_size"}, file);
    if (!group)
      return group.takeError();
    if (*group)
      p.group = **group;
    if (p.group != -1 && p.group <= 0)
      return importError(file + ": GPTQ group_size = " + llvm::Twine(p.group) + where +
                         " must be positive or -1");
    auto sym = boolKey(q, "sym", file);
    if (!sym)
      return sym.takeError();
    if (*sym)
      p.sym = **sym; // missing: true (AutoGPTQ's default, with a warning upstream)
    auto da = boolKey(q, "desc_act", file);
    if (!da)
      return da.takeError();
    if (*da)
      p.descAct = **da;
    return p;
  }

  std::string file_;
  GptqParams base_;
  std::string format_ = "v1";
  std::vector<Rule> dynamic_;
};

} // namespace

void registerGptqImport() {
  registerSafetensorsScheme([] { return std::make_unique<GptqScheme>(); });
}

} // namespace qlc::schemes
