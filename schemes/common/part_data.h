// Helpers for the scheme weight types' `dequantize` hooks (header-only): fetch a part's bytes from
// a PartBytesMap with its size checked, copy them into aligned little-endian words, and decode
// float parts (f16 / bf16 / f32) exactly.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "ir/types.h"
#include "ir/weight_type.h"
#include "support/float16.h"

namespace qlc::schemes::parts {

/// The bytes of part `name`, or nullopt if absent.
inline std::optional<llvm::ArrayRef<uint8_t>> find(const PartBytesMap &m, llvm::StringRef name) {
  auto it = m.find(name);
  if (it == m.end())
    return std::nullopt;
  return it->second.bytes;
}

/// Checks that part `name` is present and holds `count` elements of `elemBytes` bytes. Returns ""
/// or an error naming the part (the hook must never read past a part's bytes).
inline std::string checkSize(const PartBytesMap &m, llvm::StringRef name, int64_t count,
                             int64_t elemBytes) {
  auto b = find(m, name);
  if (!b)
    return "part '" + name.str() + "' is missing";
  if (int64_t(b->size()) != count * elemBytes)
    return "part '" + name.str() + "' has " + std::to_string(b->size()) + " bytes, expected " +
           std::to_string(count) + " x " + std::to_string(elemBytes);
  return "";
}

/// Copies a part into a vector of T (the data is little-endian; so is every supported host).
template <typename T> std::vector<T> words(llvm::ArrayRef<uint8_t> b) {
  std::vector<T> v(b.size() / sizeof(T));
  if (!v.empty())
    std::memcpy(v.data(), b.data(), v.size() * sizeof(T));
  return v;
}

/// Decodes a float part (f16, bf16 or f32) to f32 exactly.
inline std::vector<float> decodeFloats(llvm::ArrayRef<uint8_t> b, ElemKind elem) {
  if (elem == ElemKind::F32)
    return words<float>(b);
  std::vector<uint16_t> h = words<uint16_t>(b);
  std::vector<float> f(h.size());
  for (size_t i = 0; i < h.size(); ++i)
    f[i] = elem == ElemKind::BF16 ? bf16ToFloat(h[i]) : halfToFloat(h[i]);
  return f;
}

inline bool isScaleElem(ElemKind e) {
  return e == ElemKind::F16 || e == ElemKind::BF16 || e == ElemKind::F32;
}

/// Checks a float part of `count` elements of type `elem`.
inline std::string checkFloatPart(const PartBytesMap &m, llvm::StringRef name, int64_t count,
                                  ElemKind elem) {
  if (!isScaleElem(elem))
    return "part '" + name.str() + "' must be f16, bf16 or f32, got " + elemKindName(elem).str();
  return checkSize(m, name, count, elemKindBytes(elem));
}

/// The element type of part `name` (f16 when absent: the size check then reports it missing).
inline ElemKind hookFloatElem(const PartBytesMap &m, llvm::StringRef name, int64_t /*count*/) {
  auto it = m.find(name);
  return it == m.end() ? ElemKind::F16 : it->second.elem;
}

} // namespace qlc::schemes::parts
