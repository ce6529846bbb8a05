// safetensors reader (mmap, zero-copy), multi-shard checkpoint view, and writer.
//
// Layout: u64 LE header length N, N bytes of JSON header, then the data area. The header maps
// tensor name -> {dtype, shape, data_offsets [begin, end)} relative to the data area, plus an
// optional "__metadata__" object of strings.
#pragma once
#include "io/dtype.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/MemoryBuffer.h"

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace qlc::io {

/// One tensor of a safetensors file; `data` points into the mapped file.
struct TensorView {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape; ///< empty = scalar
  llvm::ArrayRef<uint8_t> data;

  /// Product of the dims (1 for a scalar). Validated against overflow when the file was read.
  int64_t numElements() const;
};

/// Largest header the reader accepts; the reference library uses the same 100 MB cap.
constexpr uint64_t kSafetensorsMaxHeaderBytes = 100'000'000;

class SafetensorsFile {
public:
  /// Maps the file and validates the header completely (see the checks in safetensors.cpp).
  static llvm::Expected<std::unique_ptr<SafetensorsFile>> open(llvm::StringRef path);
  /// The same checks on bytes already in memory (the fuzz targets); `path` names it in errors.
  static llvm::Expected<std::unique_ptr<SafetensorsFile>>
  openBuffer(std::unique_ptr<llvm::MemoryBuffer> buffer, llvm::StringRef path);

  llvm::StringRef path() const { return path_; }
  /// Tensors sorted by their data offset (= file order).
  const std::vector<TensorView> &tensors() const { return tensors_; }
  const TensorView *find(llvm::StringRef name) const;
  const std::map<std::string, std::string> &metadata() const { return metadata_; }
  /// Bytes of the data area (sum of all tensor sizes, since tensors tile it).
  uint64_t dataBytes() const { return dataBytes_; }

private:
  SafetensorsFile() = default;
  std::string path_;
  std::unique_ptr<llvm::MemoryBuffer> buffer_;
  std::vector<TensorView> tensors_;
  llvm::StringMap<size_t> index_;
  std::map<std::string, std::string> metadata_;
  uint64_t dataBytes_ = 0;
};

/// A model checkpoint made of one or more safetensors files.
class SafetensorsCheckpoint {
public:
  /// `path` is a .safetensors file, or a directory holding model.safetensors, or a sharded
  /// model.safetensors.index.json, or (fallback) any *.safetensors files.
  static llvm::Expected<std::unique_ptr<SafetensorsCheckpoint>> open(llvm::StringRef path);

  const TensorView *find(llvm::StringRef name) const;
  /// All tensors of all shards, sorted by name.
  const std::vector<const TensorView *> &tensors() const { return sorted_; }
  /// The shard file holding `name` (empty if there is no such tensor).
  llvm::StringRef fileOf(llvm::StringRef name) const;
  /// The folder of the checkpoint (the file's parent folder for a single file).
  llvm::StringRef directory() const { return directory_; }
  /// Sum of the byte sizes of all tensors.
  uint64_t totalBytes() const { return totalBytes_; }
  const std::vector<std::unique_ptr<SafetensorsFile>> &files() const { return files_; }

private:
  SafetensorsCheckpoint() = default;
  llvm::Error addFile(std::unique_ptr<SafetensorsFile> f);
  void finish();

  std::string directory_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  struct Entry {
    const TensorView *view;
    size_t file;
  };
  llvm::StringMap<Entry> index_;
  std::vector<const TensorView *> sorted_;
  uint64_t totalBytes_ = 0;
};

/// Builds a safetensors file in memory; tensors are laid out contiguously in insertion order.
class SafetensorsWriter {
public:
  /// `bytes` is copied; its size must equal numElements(shape) * dtypeSize(dtype) (checked by
  /// write()).
  void add(std::string name, DType dtype, std::vector<int64_t> shape,
           llvm::ArrayRef<uint8_t> bytes);
  void setMetadata(std::string key, std::string value);

  /// One file; the header is padded with spaces to a multiple of 8 bytes.
  llvm::Error write(llvm::StringRef path) const;
  /// model-0000N-of-0000M.safetensors files of at most maxShardBytes of tensor data each (a
  /// larger tensor gets a shard of its own) plus model.safetensors.index.json, in `dir`.
  llvm::Error writeSharded(llvm::StringRef dir, uint64_t maxShardBytes) const;

  size_t size() const { return entries_.size(); }

private:
  struct Entry {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    std::vector<uint8_t> bytes;
  };
  llvm::Error validate() const;
  llvm::Error writeFile(llvm::StringRef path, llvm::ArrayRef<const Entry *> entries) const;

  std::vector<Entry> entries_;
  std::map<std::string, std::string> metadata_;
};

} // namespace qlc::io
