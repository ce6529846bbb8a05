#include "ir/printer.h"

#include <cctype>
#include <set>
#include <unordered_map>

#include "llvm/Support/raw_ostream.h"

#include "ir/ir.h"

namespace qlc {
namespace {

bool isSymbolChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '$' || c == '-';
}

/// `@name` bare when it lexes back as one symbol, else `@"quoted"`.
std::string symbolRef(const std::string &name) {
  bool bare = !name.empty();
  for (char c : name)
    bare &= isSymbolChar(c);
  return "@" + (bare ? name : quoteString(name));
}

std::string locSuffix(const Location &l, const PrintOptions &o) {
  if (!o.locations || !l.isKnown())
    return "";
  return " loc(" + quoteString(l.file) + ":" + std::to_string(l.line) + ":" +
         std::to_string(l.col) + ")";
}

/// `%name` of every value, by printedValueNames.
class ValueNamer {
public:
  explicit ValueNamer(const Function &f) : names_(printedValueNames(f)) {}
  std::string operator()(const Value *v) const {
    auto it = names_.find(v);
    return it == names_.end() ? std::string("%<<unknown>>") : it->second;
  }

private:
  std::unordered_map<const Value *, std::string> names_;
};

void printHex(llvm::raw_ostream &os, const std::vector<uint8_t> &bytes, const PrintOptions &o) {
  if (o.elideInlineBytes && bytes.size() > o.elideInlineBytes) {
    os << "hex<" << bytes.size() << " bytes elided>";
    return;
  }
  static const char digits[] = "0123456789ABCDEF";
  os << "hex\"";
  for (uint8_t b : bytes)
    os << digits[b >> 4] << digits[b & 15];
  os << "\"";
}

void printWeight(const Weight &w, llvm::raw_ostream &os, const PrintOptions &o) {
  os << "weight " << symbolRef(w.name()) << " : " << weightSymbolTypeStr(w.type())
     << locSuffix(w.loc(), o) << " {\n";
  for (size_t i = 0; i < w.parts().size(); ++i) {
    const WeightPart &p = w.parts()[i];
    os << "  " << p.name << " = " << p.type.str();
    if (p.isInline()) {
      os << " = ";
      printHex(os, *p.data, o);
    } else {
      os << " from ";
      if (p.sources.size() == 1) {
        os << quoteString(p.sources[0]);
      } else {
        os << "[";
        for (size_t j = 0; j < p.sources.size(); ++j)
          os << (j ? ", " : "") << quoteString(p.sources[j]);
        os << "]";
      }
    }
    os << (i + 1 < w.parts().size() ? ",\n" : "\n");
  }
  os << "}\n";
}

void printFunction(const Function &f, llvm::raw_ostream &os, const PrintOptions &o) {
  ValueNamer name(f);
  os << "func " << symbolRef(f.name()) << "(";
  for (unsigned i = 0; i < f.numArguments(); ++i) {
    if (i)
      os << ", ";
    os << name(f.argument(i)) << ": " << f.argument(i)->type().str();
  }
  os << ")";
  const auto &rt = f.resultTypes();
  if (rt.size() == 1) {
    os << " -> " << rt[0].str();
  } else if (rt.size() > 1) {
    os << " -> (";
    for (size_t i = 0; i < rt.size(); ++i)
      os << (i ? ", " : "") << rt[i].str();
    os << ")";
  }
  os << locSuffix(f.loc(), o) << " {\n";
  for (const auto &op : f.ops()) {
    os << "  ";
    if (op->numResults()) {
      for (unsigned i = 0; i < op->numResults(); ++i)
        os << (i ? ", " : "") << name(op->result(i));
      os << " = ";
    }
    os << op->name();
    bool first = true;
    for (Value *v : op->operands()) {
      os << (first ? " " : ", ") << name(v);
      first = false;
    }
    for (const std::string &s : op->symbols()) {
      os << (first ? " " : ", ") << symbolRef(s);
      first = false;
    }
    if (!op->attrs().empty())
      os << " " << attrDictStr(op->attrs());
    if (op->numResults()) {
      os << " : ";
      for (unsigned i = 0; i < op->numResults(); ++i)
        os << (i ? ", " : "") << op->result(i)->type().str();
    }
    os << locSuffix(op->loc(), o) << "\n";
  }
  os << "}\n";
}

} // namespace

std::unordered_map<const Value *, std::string> printedValueNames(const Function &f) {
  auto valid = [](const std::string &n) {
    for (char c : n)
      if (!isSymbolChar(c))
        return false;
    return !n.empty();
  };
  std::unordered_map<std::string, unsigned> count;
  std::vector<const Value *> values;
  for (Value *a : f.arguments())
    values.push_back(a);
  for (const auto &op : f.ops())
    for (Value *r : op->results())
      values.push_back(r);
  for (const Value *v : values)
    if (!v->nameHint().empty())
      ++count[v->nameHint()];
  std::set<std::string> used;
  for (auto &[n, c] : count)
    if (c == 1 && valid(n))
      used.insert(n);
  std::unordered_map<const Value *, std::string> names;
  unsigned next = 0;
  for (const Value *v : values) {
    const std::string &h = v->nameHint();
    if (!h.empty() && count[h] == 1 && valid(h)) {
      names[v] = "%" + h;
      continue;
    }
    std::string n;
    do
      n = std::to_string(next++);
    while (used.count(n));
    used.insert(n);
    names[v] = "%" + n;
  }
  return names;
}

void printModule(const Module &m, llvm::raw_ostream &os, const PrintOptions &o) {
  bool first = true;
  auto sep = [&] {
    if (!first)
      os << "\n";
    first = false;
  };
  if (!m.attrs().empty()) {
    sep();
    os << "module attributes " << attrDictStr(m.attrs()) << "\n";
  }
  for (const auto &w : m.weights()) {
    sep();
    printWeight(*w, os, o);
  }
  for (const auto &f : m.functions()) {
    sep();
    printFunction(*f, os, o);
  }
}

std::string printModuleToString(const Module &m, const PrintOptions &opts) {
  std::string s;
  llvm::raw_string_ostream os(s);
  printModule(m, os, opts);
  return s;
}

} // namespace qlc
