#include "io/quant_config.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

namespace qlc::io {

namespace {
llvm::Error fileError(llvm::StringRef path, const llvm::Twine &what) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), (path + ": " + what).str());
}

std::string join(llvm::StringRef dir, llvm::StringRef name) {
  llvm::SmallString<256> p(dir);
  llvm::sys::path::append(p, name);
  return std::string(p);
}
} // namespace

llvm::Expected<llvm::json::Object> readJsonObjectFile(llvm::StringRef path) {
  auto bufOr = llvm::MemoryBuffer::getFile(path, /*IsText=*/true);
  if (!bufOr)
    return fileError(path, "cannot open: " + bufOr.getError().message());
  auto v = llvm::json::parse((*bufOr)->getBuffer());
  if (!v) // llvm::json's message starts with "[line:column, byte=N]"
    return fileError(path, "invalid JSON: " + llvm::toString(v.takeError()));
  llvm::json::Object *obj = v->getAsObject();
  if (!obj)
    return fileError(path, "top-level JSON value is not an object");
  return std::move(*obj);
}

llvm::Expected<QuantConfigSource> loadQuantConfig(llvm::StringRef modelDir) {
  QuantConfigSource src;
  if (!llvm::sys::fs::is_directory(modelDir))
    return fileError(modelDir, "not a directory");

  std::string config = join(modelDir, "config.json");
  if (llvm::sys::fs::exists(config)) {
    auto obj = readJsonObjectFile(config);
    if (!obj)
      return obj.takeError();
    src.modelConfig = std::move(*obj);
    if (llvm::json::Value *q = src.modelConfig.get("quantization_config")) {
      // null means "not quantized" in some exporters; anything else must be an object.
      if (q->kind() != llvm::json::Value::Null) {
        const llvm::json::Object *qo = q->getAsObject();
        if (!qo)
          return fileError(config, "quantization_config is not an object");
        src.quantization = *qo;
        src.file = config;
        return src;
      }
    }
  }

  for (const char *name : {"quant_config.json", "quantize_config.json",
                           "quant_model_description.json"}) {
    std::string p = join(modelDir, name);
    if (!llvm::sys::fs::exists(p))
      continue;
    auto obj = readJsonObjectFile(p);
    if (!obj)
      return obj.takeError();
    src.quantization = std::move(*obj);
    src.file = p;
    return src;
  }
  return src; // dense model: empty quantization
}

} // namespace qlc::io
