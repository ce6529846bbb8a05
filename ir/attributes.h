// Attribute values: op attributes, scheme weight-type parameters, module attributes.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "ir/types.h"

namespace qlc {

/// A bare identifier value such as `silu` or `Q4_K` (as opposed to a quoted string).
struct Ident {
  std::string name;
  friend bool operator==(const Ident &, const Ident &) = default;
};

enum class AttrKind { Int, Float, Bool, String, Ident, IntArray, Type };
llvm::StringRef attrKindName(AttrKind k);

class Attribute {
public:
  using Storage = std::variant<int64_t, double, bool, std::string, Ident, std::vector<int64_t>,
                               TensorType>;
  Attribute() : v_(int64_t(0)) {}
  Attribute(int64_t i) : v_(i) {}
  Attribute(int i) : v_(int64_t(i)) {}
  Attribute(double d) : v_(d) {}
  Attribute(bool b) : v_(b) {}
  Attribute(std::string s) : v_(std::move(s)) {}
  Attribute(const char *s) : v_(std::string(s)) {}
  Attribute(Ident id) : v_(std::move(id)) {}
  Attribute(std::vector<int64_t> a) : v_(std::move(a)) {}
  Attribute(TensorType t) : v_(std::move(t)) {}
  static Attribute ident(std::string name) { return Attribute(Ident{std::move(name)}); }

  AttrKind kind() const { return AttrKind(v_.index()); }
  bool isInt() const { return kind() == AttrKind::Int; }
  int64_t getInt() const { return std::get<int64_t>(v_); }
  double getFloat() const { return std::get<double>(v_); }
  /// Float value of an Int or Float attribute.
  double getNumber() const { return isInt() ? double(getInt()) : getFloat(); }
  bool getBool() const { return std::get<bool>(v_); }
  const std::string &getString() const { return std::get<std::string>(v_); }
  const std::string &getIdent() const { return std::get<Ident>(v_).name; }
  const std::vector<int64_t> &getIntArray() const { return std::get<std::vector<int64_t>>(v_); }
  const TensorType &getType() const { return std::get<TensorType>(v_); }

  /// Textual form, as the parser reads it back (floats round-trip exactly).
  std::string str() const;
  friend bool operator==(const Attribute &, const Attribute &) = default;

private:
  Storage v_;
};

/// Attributes are kept sorted by name, so printing is canonical and CSE can compare dicts.
using AttrDict = std::map<std::string, Attribute>;
std::string attrDictStr(const AttrDict &d);

/// Quote and escape a string literal as the parser reads it.
std::string quoteString(llvm::StringRef s);

} // namespace qlc
