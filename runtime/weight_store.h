// The checkpoint behind a module's `from "tensor"` parts: a safetensors file or directory (sharded
// or not) or a .gguf file, memory-mapped, never copied. Resolves parts to bytes with every size
// checked, and dequantizes whole weights with the schemes' reference dequantizers.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "llvm/ADT/ArrayRef.h"
#include "llvm/Support/Error.h"

#include "ir/ir.h"

namespace qlc {
namespace io {
class SafetensorsCheckpoint;
class GgufFile;
} // namespace io

class WeightStore {
public:
  ~WeightStore();
  /// Opens a .gguf file, a .safetensors file, or a model directory (model.safetensors, a sharded
  /// index, or *.safetensors).
  static llvm::Expected<std::unique_ptr<WeightStore>> open(llvm::StringRef path);
  /// Opens the module's `checkpoint` attribute, or returns null if it has none. A relative path is
  /// taken relative to `moduleFile`'s folder (the .qir that names it), and errors name that file.
  static llvm::Expected<std::unique_ptr<WeightStore>> openForModule(const Module &m,
                                                                    llvm::StringRef moduleFile = "");

  const std::string &path() const { return path_; }
  const io::SafetensorsCheckpoint *safetensors() const { return st_.get(); }
  const io::GgufFile *gguf() const { return gguf_.get(); }

  /// Bytes of one checkpoint tensor, checked to be exactly what `expected` describes: dtype and
  /// shape for safetensors; the byte size for GGUF (whose block types have no tensor<> element
  /// type). Errors name the checkpoint file and the tensor.
  llvm::Expected<llvm::ArrayRef<uint8_t>> tensor(llvm::StringRef name,
                                                 const TensorType &expected) const;

private:
  WeightStore() = default;
  std::string path_;
  std::unique_ptr<io::SafetensorsCheckpoint> st_;
  std::unique_ptr<io::GgufFile> gguf_;
};

/// A part's bytes: a view of inline data or of the mapped checkpoint, or (for parts stacked from
/// several tensors) an owned copy.
struct PartBytes {
  llvm::ArrayRef<uint8_t> bytes;
  std::shared_ptr<std::vector<uint8_t>> owned;
};

/// Resolves a part. `store` may be null when every part is inline.
llvm::Expected<PartBytes> resolvePart(const Weight &w, const WeightPart &p,
                                      const WeightStore *store);

/// Reference dequantization of a whole weight to f32 in its logical shape ([E,] N, K), using the
/// scheme's dequantize hook per expert; dense weights are converted from their element type.
llvm::Expected<std::vector<float>> dequantizeWeight(const Weight &w, const WeightStore *store);

} // namespace qlc
