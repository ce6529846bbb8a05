// Import of AutoAWQ GEMM safetensors checkpoints (FORMATS.md §1.1, §1.4): every Linear with a
// `<prefix>.qweight` becomes !awq<bits, group, shape = [N, K]> over qweight / qzeros / scales.
#include "schemes/common/safetensors_import.h"

namespace qlc::schemes {
namespace {

using namespace stimport;

class AwqScheme : public SafetensorsScheme {
public:
  std::string name() const override { return "awq"; }

  bool recognizes(const llvm::json::Object &q) const override {
    if (auto m = q.getString("quant_method"))
      return lower(*m) == "awq";
    // AutoAWQ's legacy quant_config.json has no quant_method: {zero_point, q_group_size, w_bit,
    // version}.
    return !q.get("quant_method") && q.get("zero_point") && (q.get("w_bit") || q.get("version"));
  }

  llvm::Error configure(const llvm::json::Object &q, llvm::StringRef file) override {
    file_ = file.str();
    auto bits = intKey(q, {"w_bit", "bits"}, file);
    if (!bits)
      return bits.takeError();
    bits_ = bits->value_or(4);
    if (bits_ != 4 && bits_ != 8)
      return importError(file + ": AWQ bits = " + llvm::Twine(bits_) +
                         " is not supported (4, or 8 for awq_marlin checkpoints)");
    auto group = intKey(q, {"q_group_size", "group_size"}, file);
    if (!group)
      return group.takeError();
    if (!*group)
      return importError(file + ": AWQ quantization config has no group_size (or q_group_size)");
    group_ = **group;
    if (group_ != -1 && group_ <= 0)
      return importError(file + ": AWQ group_size = " + llvm::Twine(group_) +
                         " must be positive or -1");
    auto zp = boolKey(q, "zero_point", file);
    if (!zp)
      return zp.takeError();
    if (!zp->value_or(true))
      return importError(file + ": AWQ zero_point = false (symmetric AWQ) is not supported: the "
                                "GEMM layout needs zero points (FORMATS.md §1.3)");
    std::string version = "gemm";
    if (const llvm::json::Value *v = q.get("version"); v && v->kind() != llvm::json::Value::Null) {
      auto s = v->getAsString();
      if (!s)
        return importError(file + ": AWQ 'version' must be a string");
      version = lower(*s);
    }
    if (version != "gemm")
      return importError(file + ": AWQ version '" + version +
                         "' is not supported (qlc reads GEMM checkpoints; gemv, gemv_fast and "
                         "marlin have other layouts)");
    skip_.clear();
    if (const llvm::json::Value *v = q.get("modules_to_not_convert");
        v && v->kind() != llvm::json::Value::Null) {
      const llvm::json::Array *a = v->getAsArray();
      if (!a)
        return importError(file + ": AWQ 'modules_to_not_convert' must be a list of names");
      for (const llvm::json::Value &e : *a) {
        auto s = e.getAsString();
        if (!s)
          return importError(file + ": AWQ 'modules_to_not_convert' must be a list of names");
        skip_.push_back(s->str());
      }
    }
    return llvm::Error::success();
  }

  llvm::Expected<std::optional<ImportedWeight>>
  importLinear(const io::SafetensorsCheckpoint &ckpt, llvm::StringRef prefix) override {
    for (const std::string &s : skip_) // substring of the prefix, as sglang/vLLM match it
      if (prefix.contains(s))
        return std::optional<ImportedWeight>();
    std::string file = fileOfModule(ckpt, prefix, {".qweight"});
    auto qw = need(ckpt, prefix, "qweight", file, "AWQ");
    if (!qw)
      return qw.takeError();
    if (llvm::Error e = checkTensor(ckpt, **qw, {ElemKind::I32}, 2))
      return e;
    auto sc = need(ckpt, prefix, "scales", file, "AWQ");
    if (!sc)
      return sc.takeError();
    if (llvm::Error e = checkTensor(ckpt, **sc, {ElemKind::F16, ElemKind::BF16, ElemKind::F32}, 2))
      return e;
    if (auto zq = need(ckpt, prefix, "qzeros", file, "AWQ"); !zq)
      return zq.takeError();
    // qweight [K, N*bits/32], scales [K/G, N].
    int64_t k = (*qw)->shape[0], n = (*sc)->shape[1];
    if ((*qw)->shape[1] * (32 / bits_) != n)
      return importError(ckpt.fileOf((*qw)->name) + ": tensor '" + (*qw)->name + "' has shape " +
                         shapeStr((*qw)->shape) + " but scales have N = " + llvm::Twine(n) +
                         " columns, so qweight should be [" + llvm::Twine(k) + ", " +
                         llvm::Twine(n / (32 / bits_)) + "] (" + llvm::Twine(bits_) +
                         "-bit codes packed along N)");
    AttrDict params{{"bits", Attribute(bits_)},
                    {"group", Attribute(group_)},
                    {"shape", Attribute(std::vector<int64_t>{n, k})}};
    std::string g = group_ == -1 ? "1 group" : "K/G = " + std::to_string(k) + "/" +
                                                   std::to_string(group_);
    auto w = buildWeight(ckpt, prefix, file, "awq", params,
                         {{"qzeros", "rows = " + g + ", columns = N*bits/32"},
                          {"scales", "rows = " + g + ", columns = N"}});
    if (!w)
      return w.takeError();
    return std::optional<ImportedWeight>(std::move(*w));
  }

  std::vector<std::string> moduleSuffixes() const override { return {".qweight"}; }

private:
  std::string file_;
  int64_t bits_ = 4, group_ = 128;
  std::vector<std::string> skip_;
};

} // namespace

void registerAwqImport() {
  registerSafetensorsScheme([] { return std::make_unique<AwqScheme>(); });
}

} // namespace qlc::schemes
