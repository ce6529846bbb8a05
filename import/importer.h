// Checkpoint import: a checkpoint becomes a Module whose weights carry their scheme in their type
// and whose functions are the model's decoder blocks (MLP / MoE), ready to run.
//
// Two steps. A *provider* enumerates the checkpoint's modules under HF-style names
// ("model.layers.0.mlp.gate_proj"), each with its imported weight (type + parts referencing the
// checkpoint's tensors, never copied): the safetensors provider asks the registered schemes, the
// GGUF provider maps GGUF names. The *assembler* then recognises blocks by name and emits functions.
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "llvm/Support/Error.h"
#include "llvm/Support/JSON.h"

#include "ir/ir.h"

namespace qlc {
namespace io {
class SafetensorsCheckpoint;
}

/// A weight as a scheme imports it: its type and its parts (checkpoint references).
struct ImportedWeight {
  WeightSymbolType type;
  std::vector<WeightPart> parts;
};

enum class ModuleKind { Linear, Embedding, Norm };

/// One module of the checkpoint under its HF-style name.
struct ImportedModule {
  std::string name; // e.g. "model.layers.0.mlp.gate_proj", or "...mlp.experts.gate_proj" (stack)
  ModuleKind kind = ModuleKind::Linear;
  ImportedWeight weight;
  std::optional<ImportedWeight> bias;
};

/// Model facts the assembler needs (from config.json or GGUF metadata).
struct ModelInfo {
  std::string architecture;  // "llama", "mixtral", "qwen3_moe", ...
  int64_t numLayers = 0;
  int64_t hiddenSize = 0;
  int64_t numExperts = 0;    // 0 = dense MLPs
  int64_t topK = 0;
  std::string topKSource;    // the config key top_k was read from, for messages
  bool renormalize = false;  // renormalise the top-k routing weights
  double rmsEps = 1e-6;
  std::string scheme;        // "awq", "gguf", "dense", ...
};

struct ImportedModel {
  ModelInfo info;
  std::string checkpoint; // path the module's `checkpoint` attribute will name
  std::vector<ImportedModule> modules;
};

/// A scheme's reading of safetensors checkpoints (registered by schemes/<name>/).
class SafetensorsScheme {
public:
  virtual ~SafetensorsScheme() = default;
  virtual std::string name() const = 0;
  /// Whether `quant` (config.json's quantization_config, or a legacy/side file's object) is this
  /// scheme's config.
  virtual bool recognizes(const llvm::json::Object &quant) const = 0;
  /// Reads the scheme's parameters; errors name `configFile` and the key.
  virtual llvm::Error configure(const llvm::json::Object &quant, llvm::StringRef configFile) = 0;
  /// The weight of the Linear at `prefix` (tensors `prefix.qweight`, ...), or nullopt if the
  /// scheme leaves the module unquantized (ignore lists): the provider then imports `prefix.weight`
  /// as a dense tensor. Errors name the checkpoint file and the tensor.
  virtual llvm::Expected<std::optional<ImportedWeight>>
  importLinear(const io::SafetensorsCheckpoint &ckpt, llvm::StringRef prefix) = 0;
  /// Tensor-name suffixes that mark a module of this scheme (".qweight", ".weight_packed", ...).
  virtual std::vector<std::string> moduleSuffixes() const = 0;
};

void registerSafetensorsScheme(std::function<std::unique_ptr<SafetensorsScheme>()> factory);
std::vector<std::unique_ptr<SafetensorsScheme>> createSafetensorsSchemes();

/// A provider for a whole container format, chosen by file extension (".gguf").
using ContainerProvider = std::function<llvm::Expected<ImportedModel>(llvm::StringRef path)>;
void registerContainerProvider(std::string extension, ContainerProvider provider);

/// Reads a checkpoint (a model directory or .safetensors file, or a registered container such as
/// .gguf) into its modules.
llvm::Expected<ImportedModel> readCheckpoint(llvm::StringRef path);

/// Builds the module: `module attributes {checkpoint = ...}`, one weight per imported module, and
/// a function per recognised block: `@<layer>.mlp(%x) -> y` (gate/up/down with silu), `@<layer>.moe`
/// (router + experts), `@embed(%ids)`, `@lm_head(%x)`.
llvm::Expected<std::unique_ptr<Module>> assembleModule(const ImportedModel &model);

/// readCheckpoint + assembleModule.
llvm::Expected<std::unique_ptr<Module>> importCheckpoint(llvm::StringRef path);

/// Stacks per-expert weights (all of one type) into one expert-stacked weight: same type with
/// `experts = E`, each part stacked from the experts' tensors (`from [...]`).
llvm::Expected<ImportedWeight> stackExperts(const std::vector<ImportedWeight> &experts,
                                            llvm::StringRef what);

/// Error helper: "<file>: <msg>".
llvm::Error importError(const llvm::Twine &msg);

} // namespace qlc
