// GGUF reader (v2/v3, mmap, zero-copy, hardened against hostile files) and writer
// (FORMATS.md §6.1-6.3).
#pragma once
#include "io/ggml_types.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/MemoryBuffer.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace qlc::io {

/// Metadata value types (`gguf_type`, FORMATS.md §6.1).
enum class GgufType : uint32_t { U8 = 0, I8, U16, I16, U32, I32, F32, Bool, String, Array, U64, I64, F64 };

llvm::StringRef ggufTypeName(GgufType t);
/// Bytes of a fixed-size scalar type; 0 for String and Array.
size_t ggufScalarSize(GgufType t);

/// GGUF_DEFAULT_ALIGNMENT, used when general.alignment is absent.
constexpr uint64_t kGgufDefaultAlignment = 32;
/// Array nesting the reader accepts (ggml itself rejects any nesting; the spec allows it).
constexpr unsigned kGgufMaxArrayDepth = 8;

struct GgufValue {
  GgufType type = GgufType::U8;
  GgufType elemType = GgufType::U8; ///< element type, meaningful only for arrays
  /// Unsigned ints -> uint64_t, signed ints -> int64_t, floats -> double, Bool -> bool,
  /// String -> std::string, Array -> std::vector<GgufValue>.
  std::variant<uint64_t, int64_t, double, bool, std::string, std::vector<GgufValue>> v;

  static GgufValue makeUInt(GgufType t, uint64_t x); ///< U8/U16/U32/U64
  static GgufValue makeInt(GgufType t, int64_t x);   ///< I8/I16/I32/I64
  static GgufValue makeFloat(GgufType t, double x);  ///< F32/F64
  static GgufValue makeBool(bool x);
  static GgufValue makeString(std::string s);
  static GgufValue makeArray(GgufType elemType, std::vector<GgufValue> elems);
  static GgufValue makeStringArray(const std::vector<std::string> &elems);

  /// Any integer type whose value fits int64.
  std::optional<int64_t> asInt() const;
  /// Any integer type whose value is non-negative.
  std::optional<uint64_t> asUInt() const;
  /// F32/F64 (and integers, converted).
  std::optional<double> asFloat() const;
  std::optional<bool> asBool() const;
  std::optional<std::string> asString() const;
  const std::vector<GgufValue> *asArray() const;

  bool operator==(const GgufValue &o) const;
  bool operator!=(const GgufValue &o) const { return !(*this == o); }
};

struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> ne; ///< GGUF order: ne[0] is the contiguous row length
  uint32_t ggmlType = 0;
  uint64_t offset = 0; ///< relative to the data blob start
  llvm::ArrayRef<uint8_t> data; ///< points into the mapped file

  int64_t numElements() const;
};

class GgufFile {
public:
  /// Maps the file and validates all of its structure (see gguf.cpp for every check).
  static llvm::Expected<std::unique_ptr<GgufFile>> open(llvm::StringRef path);
  /// The same checks on bytes already in memory (the fuzz targets); `path` names it in errors.
  static llvm::Expected<std::unique_ptr<GgufFile>>
  openBuffer(std::unique_ptr<llvm::MemoryBuffer> buffer, llvm::StringRef path);

  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  /// Absolute file offset of the tensor data blob.
  uint64_t dataOffset() const { return dataOffset_; }
  /// Key/value pairs in file order.
  const std::vector<std::pair<std::string, GgufValue>> &metadata() const { return kv_; }
  const GgufValue *find(llvm::StringRef key) const;
  /// Tensor infos in file order.
  const std::vector<GgufTensorInfo> &tensors() const { return tensors_; }
  const GgufTensorInfo *findTensor(llvm::StringRef name) const;
  llvm::StringRef path() const { return path_; }

private:
  friend class GgufParser;
  GgufFile() = default;
  std::string path_;
  std::unique_ptr<llvm::MemoryBuffer> buffer_;
  uint32_t version_ = 0;
  uint64_t alignment_ = kGgufDefaultAlignment;
  uint64_t dataOffset_ = 0;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  llvm::StringMap<size_t> kvIndex_;
  std::vector<GgufTensorInfo> tensors_;
  llvm::StringMap<size_t> tensorIndex_;
};

/// Writes GGUF in ggml's canonical layout: KVs, tensor infos with sequential offsets, the data
/// blob aligned, each tensor padded with 0x00 to the alignment (FORMATS.md §6.1).
class GgufWriter {
public:
  void setVersion(uint32_t v) { version_ = v; } ///< 2 or 3 (default 3)
  /// Also records general.alignment (u32), as readers take the alignment from that key.
  void setAlignment(uint32_t a);

  /// Adds a KV pair; keys must be unique (checked by write()). A U32 general.alignment also
  /// sets the alignment.
  void addKV(std::string key, GgufValue value);
  void addU8(std::string k, uint8_t x) { addKV(std::move(k), GgufValue::makeUInt(GgufType::U8, x)); }
  void addI8(std::string k, int8_t x) { addKV(std::move(k), GgufValue::makeInt(GgufType::I8, x)); }
  void addU16(std::string k, uint16_t x) { addKV(std::move(k), GgufValue::makeUInt(GgufType::U16, x)); }
  void addI16(std::string k, int16_t x) { addKV(std::move(k), GgufValue::makeInt(GgufType::I16, x)); }
  void addU32(std::string k, uint32_t x) { addKV(std::move(k), GgufValue::makeUInt(GgufType::U32, x)); }
  void addI32(std::string k, int32_t x) { addKV(std::move(k), GgufValue::makeInt(GgufType::I32, x)); }
  void addU64(std::string k, uint64_t x) { addKV(std::move(k), GgufValue::makeUInt(GgufType::U64, x)); }
  void addI64(std::string k, int64_t x) { addKV(std::move(k), GgufValue::makeInt(GgufType::I64, x)); }
  void addF32(std::string k, float x) { addKV(std::move(k), GgufValue::makeFloat(GgufType::F32, x)); }
  void addF64(std::string k, double x) { addKV(std::move(k), GgufValue::makeFloat(GgufType::F64, x)); }
  void addBool(std::string k, bool x) { addKV(std::move(k), GgufValue::makeBool(x)); }
  void addString(std::string k, std::string s) { addKV(std::move(k), GgufValue::makeString(std::move(s))); }
  void addArray(std::string k, GgufType elemType, std::vector<GgufValue> elems) {
    addKV(std::move(k), GgufValue::makeArray(elemType, std::move(elems)));
  }
  void addStringArray(std::string k, const std::vector<std::string> &elems) {
    addKV(std::move(k), GgufValue::makeStringArray(elems));
  }

  /// `bytes` is copied; its size must equal ggmlTensorBytes(ggmlType, ne) (checked by write()).
  void addTensor(std::string name, std::vector<int64_t> ne, uint32_t ggmlType,
                 llvm::ArrayRef<uint8_t> bytes);

  llvm::Error write(llvm::StringRef path) const;

private:
  struct Tensor {
    std::string name;
    std::vector<int64_t> ne;
    uint32_t type;
    std::vector<uint8_t> bytes;
  };
  uint32_t version_ = 3;
  uint32_t alignment_ = uint32_t(kGgufDefaultAlignment);
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::vector<Tensor> tensors_;
};

} // namespace qlc::io
