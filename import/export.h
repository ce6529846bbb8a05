// Export: a lowered module and its (rewritten) weights as a self-contained checkpoint directory
// that a server loads with no repack at start-up: model.safetensors (every part as a tensor named
// "<weight>.<part>", dense weights as "<weight>.weight"), model.qir (the lowered IR referencing
// those tensors) and config.json saying so ({"quantization_config": {"quant_method": "qlc",
// "layout": ..., "ir": "model.qir"}}). Importing the directory gives the same IR back.
#pragma once
#include "llvm/Support/Error.h"

namespace qlc {
class Module;
class WeightStore;

llvm::Error exportCheckpoint(const Module &m, const WeightStore *store, llvm::StringRef dir,
                             llvm::StringRef layout);

/// If `dir` is an exported checkpoint, its module (checkpoint path made absolute); else null.
llvm::Expected<std::unique_ptr<Module>> readExportedCheckpoint(llvm::StringRef dir);

} // namespace qlc
