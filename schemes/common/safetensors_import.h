// Helpers shared by the schemes' safetensors importers (schemes/<scheme>/<scheme>_import.cpp):
// tensor look-up with named errors, building a scheme's weight type, and mapping its expected
// parts onto the checkpoint tensors `<prefix>.<part>` with every dtype and shape checked.
// Parts reference the checkpoint by name: nothing is copied.
#pragma once
#include <regex>
#include <string>
#include <vector>

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/JSON.h"

#include "import/importer.h"
#include "io/dtype.h"
#include "io/safetensors.h"
#include "ir/weight_type.h"

namespace qlc::schemes::stimport {


inline std::string shapeStr(const std::vector<int64_t> &s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i)
    r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

inline std::string elemsStr(const std::vector<ElemKind> &es) {
  std::string r;
  for (size_t i = 0; i < es.size(); ++i) {
    std::string n = elemKindName(es[i]).str();
    for (char &c : n)
      c = char(std::toupper(static_cast<unsigned char>(c)));
    r += (i ? (i + 1 == es.size() ? " or " : ", ") : "") + n;
  }
  return r;
}

/// The file a module lives in (for errors about its missing tensors): the file of the tensor that
/// marked the module, else the checkpoint's folder.
inline std::string fileOfModule(const io::SafetensorsCheckpoint &ckpt, llvm::StringRef prefix,
                                llvm::ArrayRef<std::string> markers) {
  for (const std::string &m : markers) {
    llvm::StringRef f = ckpt.fileOf((prefix + m).str());
    if (!f.empty())
      return f.str();
  }
  return ckpt.directory().str();
}

/// `<prefix>.<part>`, required: an error naming the file and the tensor if it is absent.
inline llvm::Expected<const io::TensorView *>
need(const io::SafetensorsCheckpoint &ckpt, llvm::StringRef prefix, llvm::StringRef part,
     llvm::StringRef moduleFile, llvm::StringRef scheme) {
  std::string name = (prefix + "." + part).str();
  if (const io::TensorView *t = ckpt.find(name))
    return t;
  return importError(moduleFile + ": tensor '" + name + "' is missing (" + scheme +
                     " module '" + prefix + "' needs it)");
}

/// Checks the dtype and rank of a tensor before its shape is used to derive dimensions.
inline llvm::Error checkTensor(const io::SafetensorsCheckpoint &ckpt, const io::TensorView &t,
                               std::vector<ElemKind> elems, size_t rank) {
  auto e = io::elemKindOf(t.dtype);
  bool ok = false;
  for (ElemKind k : elems)
    ok |= e && *e == k;
  if (!ok)
    return importError(ckpt.fileOf(t.name) + ": tensor '" + t.name + "' has dtype " +
                       io::safetensorsName(t.dtype) + ", expected " + elemsStr(elems));
  if (t.shape.size() != rank)
    return importError(ckpt.fileOf(t.name) + ": tensor '" + t.name + "' has shape " +
                       shapeStr(t.shape) + ", expected " + std::to_string(rank) + " dims");
  return llvm::Error::success();
}

/// Builds `!<mnemonic><params>` and maps each expected part to the tensor `<prefix>.<part>`:
/// required parts must exist, every present part must have an allowed dtype and exactly the shape
/// the type implies. `hint` is appended to shape errors (e.g. "rows = K/G").
inline llvm::Expected<ImportedWeight>
buildWeight(const io::SafetensorsCheckpoint &ckpt, llvm::StringRef prefix,
            llvm::StringRef moduleFile, llvm::StringRef mnemonic, const AttrDict &params,
            const std::map<std::string, std::string> &hints = {}) {
  const WeightTypeDef *def = WeightTypeRegistry::get().lookup(mnemonic);
  if (!def)
    return importError("weight type !" + mnemonic + " is not registered");
  std::string err;
  auto type = WeightTypeRegistry::get().build(def, params, err);
  if (!type)
    return importError(moduleFile + ": module '" + prefix + "': " + err);
  ImportedWeight w;
  w.type = *type;
  for (const PartSpec &ps : type->expectedParts()) {
    std::string name = (prefix + "." + ps.name).str();
    const io::TensorView *t = ckpt.find(name);
    if (!t) {
      if (ps.optional)
        continue;
      return importError(moduleFile + ": tensor '" + name + "' is missing (" + type->str() +
                         " needs part '" + ps.name + "')");
    }
    auto e = io::elemKindOf(t->dtype);
    bool ok = false;
    for (ElemKind k : ps.elems)
      ok |= e && *e == k;
    if (!ok)
      return importError(ckpt.fileOf(name) + ": tensor '" + name + "' has dtype " +
                         io::safetensorsName(t->dtype) + ", expected " + elemsStr(ps.elems) +
                         " (part '" + ps.name + "' of " + type->str() + ")");
    if (t->shape != ps.shape) {
      auto h = hints.find(ps.name);
      return importError(ckpt.fileOf(name) + ": tensor '" + name + "' has shape " +
                         shapeStr(t->shape) + ", expected " + shapeStr(ps.shape) +
                         (h != hints.end() ? " (" + h->second + ")" : std::string()) + " for " +
                         type->str());
    }
    w.parts.push_back({ps.name, TensorType(*e, ps.shape), {name}, nullptr, {}});
  }
  return w;
}

/// Python's re.match(pattern, s): the pattern must match at the start of s.
inline bool reMatch(const std::string &pattern, const std::string &s) {
  try {
    std::regex re(pattern);
    return std::regex_search(s, re, std::regex_constants::match_continuous);
  } catch (const std::regex_error &) {
    return false;
  }
}

/// An integer config value under any of `keys` (the first present wins); errors name the file.
inline llvm::Expected<std::optional<int64_t>> intKey(const llvm::json::Object &o,
                                                     std::initializer_list<const char *> keys,
                                                     llvm::StringRef file) {
  for (const char *k : keys)
    if (const llvm::json::Value *v = o.get(k)) {
      if (v->kind() == llvm::json::Value::Null)
        return std::optional<int64_t>();
      if (auto i = v->getAsInteger())
        return std::optional<int64_t>(*i);
      return importError(file + ": quantization config key '" + k + "' must be an integer");
    }
  return std::optional<int64_t>();
}

inline llvm::Expected<std::optional<bool>> boolKey(const llvm::json::Object &o, const char *key,
                                                   llvm::StringRef file) {
  if (const llvm::json::Value *v = o.get(key)) {
    if (v->kind() == llvm::json::Value::Null)
      return std::optional<bool>();
    if (auto b = v->getAsBoolean())
      return std::optional<bool>(*b);
    return importError(file + ": quantization config key '" + key + "' must be true or false");
  }
  return std::optional<bool>();
}

inline std::string lower(llvm::StringRef s) { return s.lower(); }

} // namespace qlc::schemes::stimport
