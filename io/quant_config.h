// Locating a checkpoint's quantization config (config.json quantization_config, legacy
// quant_config.json / quantize_config.json, vllm-ascend quant_model_description.json).
#pragma once
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/JSON.h"

#include <string>

namespace qlc::io {

struct QuantConfigSource {
  llvm::json::Object quantization; ///< empty for a dense (unquantized) model
  std::string file;                ///< where `quantization` was found; empty if nowhere
  llvm::json::Object modelConfig;  ///< all of config.json, empty if there is none
};

/// Reads `modelDir`'s config files. Search order: config.json's quantization_config, then
/// quant_config.json, quantize_config.json (AutoGPTQ/AutoAWQ legacy: the whole object), then
/// quant_model_description.json (vllm-ascend/modelslim: the whole object).
llvm::Expected<QuantConfigSource> loadQuantConfig(llvm::StringRef modelDir);

/// Parses a JSON file that must hold an object; errors name the file (and line/column).
llvm::Expected<llvm::json::Object> readJsonObjectFile(llvm::StringRef path);

} // namespace qlc::io
