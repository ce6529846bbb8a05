// The valid small checkpoints that fuzz_import and fuzz_config mutate: tests/fuzz/templates/<name>/
// (config.json + model.safetensors, written by qlc-make-checkpoint through make_seeds.py). The
// order of kTemplates is part of the corpus format (byte 0 of an input picks one): append only.
#pragma once
#include <string>
#include <vector>

#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"

#include "fuzz_common.h"
#include "io/safetensors.h"

#ifndef QLC_FUZZ_TEMPLATES_DIR
#error "QLC_FUZZ_TEMPLATES_DIR must name tests/fuzz/templates"
#endif

namespace qlc::fuzz {

inline const char *const kTemplates[] = {"dense", "awq",  "awq-moe",       "gptq",
                                         "gptq-actorder", "gptq-v2", "ct", "ct-actorder",
                                         "w8a8"};
constexpr size_t kNumTemplates = sizeof(kTemplates) / sizeof(kTemplates[0]);

struct TemplateTensor {
  std::string name;
  io::DType dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

struct Template {
  std::string name;
  llvm::json::Object config;
  std::string configText;             ///< config.json as written
  std::string safetensorsBytes;       ///< model.safetensors as written
  std::vector<TemplateTensor> tensors; ///< in file order
};

inline std::string readWhole(const std::string &path) {
  auto buf = llvm::MemoryBuffer::getFile(path, /*IsText=*/false, /*RequiresNullTerminator=*/false);
  if (!buf) {
    llvm::errs() << "fuzz harness: cannot read " << path << "\n";
    std::abort();
  }
  return (*buf)->getBuffer().str();
}

inline const std::vector<Template> &templates() {
  static const std::vector<Template> all = [] {
    std::vector<Template> out;
    for (const char *name : kTemplates) {
      Template t;
      t.name = name;
      std::string dir = std::string(QLC_FUZZ_TEMPLATES_DIR) + "/" + name;
      t.configText = readWhole(dir + "/config.json");
      auto v = llvm::json::parse(t.configText);
      if (!v || !v->getAsObject()) {
        llvm::errs() << "fuzz harness: bad template " << dir << "/config.json\n";
        std::abort();
      }
      t.config = *v->getAsObject();
      t.safetensorsBytes = readWhole(dir + "/model.safetensors");
      auto f = io::SafetensorsFile::open(dir + "/model.safetensors");
      if (!f) {
        llvm::errs() << "fuzz harness: " << llvm::toString(f.takeError()) << "\n";
        std::abort();
      }
      for (const io::TensorView &tv : (*f)->tensors())
        t.tensors.push_back({tv.name, tv.dtype, tv.shape, {tv.data.begin(), tv.data.end()}});
      out.push_back(std::move(t));
    }
    return out;
  }();
  return all;
}

} // namespace qlc::fuzz
