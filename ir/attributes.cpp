#include "ir/attributes.h"

#include <charconv>
#include <cmath>

namespace qlc {

llvm::StringRef attrKindName(AttrKind k) {
  switch (k) {
  case AttrKind::Int: return "integer";
  case AttrKind::Float: return "float";
  case AttrKind::Bool: return "bool";
  case AttrKind::String: return "string";
  case AttrKind::Ident: return "identifier";
  case AttrKind::IntArray: return "integer list";
  case AttrKind::Type: return "type";
  }
  return "?";
}

std::string quoteString(llvm::StringRef s) {
  static const char hex[] = "0123456789ABCDEF";
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += char(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c >= 0x7F) {
      out += '\\';
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += char(c);
    }
  }
  return out + "\"";
}

static std::string floatStr(double d) {
  if (std::isnan(d))
    return "nan";
  if (std::isinf(d))
    return d > 0 ? "inf" : "-inf";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, d); // shortest form that reads back exactly
  std::string s(buf, r.ptr);
  // Keep floats recognisable as floats when read back.
  if (s.find_first_of(".e") == std::string::npos)
    s += ".0";
  return s;
}

std::string Attribute::str() const {
  switch (kind()) {
  case AttrKind::Int: return std::to_string(getInt());
  case AttrKind::Float: return floatStr(getFloat());
  case AttrKind::Bool: return getBool() ? "true" : "false";
  case AttrKind::String: return quoteString(getString());
  case AttrKind::Ident: return getIdent();
  case AttrKind::IntArray: {
    std::string s = "[";
    const auto &a = getIntArray();
    for (size_t i = 0; i < a.size(); ++i) {
      if (i)
        s += ", ";
      s += std::to_string(a[i]);
    }
    return s + "]";
  }
  case AttrKind::Type: return getType().str();
  }
  return "";
}

std::string attrDictStr(const AttrDict &d) {
  std::string s = "{";
  bool first = true;
  for (const auto &[k, v] : d) {
    if (!first)
      s += ", ";
    first = false;
    s += k + " = " + v.str();
  }
  return s + "}";
}

} // namespace qlc
