// Fuzz target: the model configuration readers (io/quant_config.cpp; the config.json facts of
// import/hf_provider.cpp; every scheme's recognizes/configure). Input: byte 0 picks a template
// checkpoint (low 4 bits, tests/fuzz/templates.h) and the file the rest of the bytes become
// (bits 4-5: config.json, quant_config.json, quantize_config.json, quant_model_description.json;
// for the last three, config.json is the template's without its quantization_config). The
// template's model.safetensors is beside it; the folder is imported, verified and dequantized.
#include "templates.h"

#include "io/quant_config.h"

using namespace qlc;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  static const char *const kFiles[] = {"config.json", "quant_config.json", "quantize_config.json",
                                       "quant_model_description.json"};
  const auto &tpls = fuzz::templates();
  const fuzz::Template &t = tpls[(data[0] & 15) % tpls.size()];
  const char *file = kFiles[(data[0] >> 4) & 3];

  std::string dir = fuzz::scratchPath("cfg-" + t.name);
  static std::vector<bool> written(tpls.size());
  size_t idx = &t - tpls.data();
  if (!written[idx]) {
    llvm::sys::fs::create_directories(dir);
    fuzz::writeFile(dir + "/model.safetensors", t.safetensorsBytes.data(),
                    t.safetensorsBytes.size());
    written[idx] = true;
  }
  for (const char *f : kFiles)
    llvm::sys::fs::remove(dir + "/" + f);
  if (std::string(file) != "config.json") {
    llvm::json::Object base = t.config;
    base.erase("quantization_config");
    std::string text;
    llvm::raw_string_ostream os(text);
    os << llvm::json::Value(std::move(base));
    os.flush();
    fuzz::writeFile(dir + "/config.json", text.data(), text.size());
  }
  fuzz::writeFile(dir + "/" + file, data + 1, size - 1);

  auto cfg = io::loadQuantConfig(dir);
  if (fuzz::ok(cfg))
    fuzz::importVerifyDequant(dir);
  return 0;
}
