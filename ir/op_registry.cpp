#include "ir/op_registry.h"

#include <cstdio>
#include <cstdlib>

namespace qlc {

const AttrSpec *OpDef::attrSpec(llvm::StringRef n) const {
  for (const AttrSpec &a : attrs)
    if (a.name == n)
      return &a;
  return nullptr;
}

const Attribute &InferInput::attr(llvm::StringRef name) const {
  if (const Attribute *a = op.attr(name))
    return *a;
  const AttrSpec *spec = op.def()->attrSpec(name);
  if (!spec || !spec->defaultValue) {
    std::fprintf(stderr, "qlc: op '%s' reads attribute '%s' that has no default\n",
                 op.name().c_str(), name.str().c_str());
    std::abort();
  }
  return *spec->defaultValue;
}

OpRegistry &OpRegistry::get() {
  static OpRegistry r;
  return r;
}

const OpDef *OpRegistry::add(OpDef def) {
  if (lookup(def.name)) {
    std::fprintf(stderr, "qlc: op '%s' registered twice\n", def.name.c_str());
    std::abort();
  }
  defs_.push_back(std::make_unique<OpDef>(std::move(def)));
  return defs_.back().get();
}

const OpDef *OpRegistry::lookup(llvm::StringRef name) const {
  for (const auto &d : defs_)
    if (d->name == name)
      return d.get();
  return nullptr;
}

std::vector<const OpDef *> OpRegistry::all() const {
  std::vector<const OpDef *> v;
  for (const auto &d : defs_)
    v.push_back(d.get());
  return v;
}

static std::string plural(unsigned n, const char *what) {
  return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
}

static std::string countRange(unsigned lo, unsigned hi, const char *what) {
  if (lo == hi)
    return plural(lo, what);
  return std::to_string(lo) + " to " + plural(hi, what);
}

std::optional<std::vector<TensorType>> inferResultTypes(const Operation &op, const Module &m,
                                                        const std::vector<TensorType> *declared,
                                                        std::string &error) {
  const OpDef &d = *op.def();
  unsigned nOps = unsigned(op.operands().size()), nSyms = unsigned(op.symbols().size());
  if (nOps < d.minOperands || nOps > d.maxOperands) {
    error = "'" + d.name + "' takes " + countRange(d.minOperands, d.maxOperands, "operand") +
            ", got " + std::to_string(nOps);
    return std::nullopt;
  }
  if (nSyms < d.minSymbols || nSyms > d.maxSymbols) {
    error = "'" + d.name + "' takes " + countRange(d.minSymbols, d.maxSymbols, "weight symbol") +
            ", got " + std::to_string(nSyms);
    return std::nullopt;
  }
  for (unsigned i = 0; i < nSyms; ++i)
    if (!m.lookupWeight(op.symbols()[i])) {
      error = "'" + d.name + "' references unknown weight @" + op.symbols()[i];
      return std::nullopt;
    }
  for (const auto &[k, v] : op.attrs()) {
    const AttrSpec *spec = d.attrSpec(k);
    if (!spec && d.openAttrs)
      continue;
    if (!spec) {
      std::string names;
      for (const AttrSpec &a : d.attrs)
        names += (names.empty() ? "" : ", ") + a.name;
      error = "'" + d.name + "' has no attribute '" + k + "'" +
              (names.empty() ? std::string(" (it takes none)") : " (it takes: " + names + ")");
      return std::nullopt;
    }
    bool kindOk = v.kind() == spec->kind ||
                  (spec->kind == AttrKind::Float && v.kind() == AttrKind::Int);
    if (!kindOk) {
      error = "attribute '" + k + "' of '" + d.name + "' must be " +
              attrKindName(spec->kind).str() + ", got " + v.str();
      return std::nullopt;
    }
    if (spec->kind == AttrKind::Ident && !spec->choices.empty()) {
      bool ok = false;
      std::string list;
      for (const std::string &c : spec->choices) {
        ok |= c == v.getIdent();
        list += (list.empty() ? "" : ", ") + c;
      }
      if (!ok) {
        error = "attribute '" + k + "' of '" + d.name + "' must be one of " + list + ", got " +
                v.getIdent();
        return std::nullopt;
      }
    }
  }
  for (const AttrSpec &a : d.attrs)
    if (!a.defaultValue && !op.attr(a.name)) {
      error = "'" + d.name + "' requires attribute '" + a.name + "'";
      return std::nullopt;
    }
  InferInput in{op, m, declared};
  auto types = d.infer(in, error);
  if (!types)
    return std::nullopt;
  if (declared) {
    if (declared->size() != types->size()) {
      error = "'" + d.name + "' has " + plural(unsigned(types->size()), "result") + ", but " +
              std::to_string(declared->size()) + " result types were given";
      return std::nullopt;
    }
    for (size_t i = 0; i < types->size(); ++i)
      if (!typesCompatible((*declared)[i], (*types)[i])) {
        error = "result #" + std::to_string(i) + " of '" + d.name + "' is declared " +
                (*declared)[i].str() + " but the operands imply " + (*types)[i].str();
        return std::nullopt;
      }
  }
  return types;
}

} // namespace qlc
