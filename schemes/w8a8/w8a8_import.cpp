// Import of vllm-ascend / modelslim W8A8_DYNAMIC safetensors checkpoints (FORMATS.md §5.4): the
// quant_model_description.json maps "<prefix>.weight" to a quant type; every Linear with a
// `<prefix>.weight_scale` whose type is W8A8_DYNAMIC becomes !w8a8<shape = [N, K]> over weight /
// weight_scale / weight_offset. "FLOAT" modules stay dense.
#include "schemes/common/safetensors_import.h"

namespace qlc::schemes {
namespace {

using namespace stimport;

class W8a8Scheme : public SafetensorsScheme {
public:
  std::string name() const override { return "w8a8"; }

  bool recognizes(const llvm::json::Object &q) const override {
    if (q.get("quant_method"))
      return false;
    if (q.getString("model_quant_type"))
      return true;
    for (const auto &[k, v] : q)
      if (llvm::StringRef(k).ends_with(".weight") && v.getAsString())
        return true;
    return false;
  }

  llvm::Error configure(const llvm::json::Object &q, llvm::StringRef file) override {
    file_ = file.str();
    types_.clear();
    for (const auto &[k, v] : q) {
      if (!llvm::StringRef(k).ends_with(".weight"))
        continue;
      auto s = v.getAsString();
      if (!s)
        return importError(file + ": entry '" + k.str() + "' must be a quant type string");
      types_[k.str()] = s->str();
    }
    if (auto m = q.getString("model_quant_type"))
      modelType_ = m->str();
    return llvm::Error::success();
  }

  llvm::Expected<std::optional<ImportedWeight>>
  importLinear(const io::SafetensorsCheckpoint &ckpt, llvm::StringRef prefix) override {
    std::string key = (prefix + ".weight").str();
    std::string file = fileOfModule(ckpt, prefix, {".weight_scale", ".weight"});
    auto it = types_.find(key);
    std::string type;
    if (it != types_.end())
      type = it->second;
    else if (types_.empty() && !modelType_.empty())
      type = modelType_; // a description with only the model-wide type
    else
      return importError(file_ + ": no quant type for '" + key + "' (the checkpoint " + file +
                         " has its weight_scale)");
    if (type == "FLOAT")
      return std::optional<ImportedWeight>();
    if (type != "W8A8_DYNAMIC")
      return importError(file + ": tensor '" + key + "' has quant type '" + type + "' (" + file_ +
                         "), which is not supported (qlc reads W8A8_DYNAMIC and FLOAT)");
    auto w = need(ckpt, prefix, "weight", file, "W8A8_DYNAMIC");
    if (!w)
      return w.takeError();
    if (llvm::Error e = checkTensor(ckpt, **w, {ElemKind::I8}, 2))
      return e;
    int64_t n = (*w)->shape[0], k = (*w)->shape[1];
    AttrDict params{{"shape", Attribute(std::vector<int64_t>{n, k})}};
    auto iw = buildWeight(ckpt, prefix, file, "w8a8", params,
                          {{"weight_scale", "one scale per output row"},
                           {"weight_offset", "one offset per output row"}});
    if (!iw)
      return iw.takeError();
    return std::optional<ImportedWeight>(std::move(*iw));
  }

  std::vector<std::string> moduleSuffixes() const override { return {".weight_scale"}; }

private:
  std::string file_, modelType_;
  std::map<std::string, std::string> types_;
};

} // namespace

void registerW8a8Import() {
  registerSafetensorsScheme([] { return std::make_unique<W8a8Scheme>(); });
}

} // namespace qlc::schemes
