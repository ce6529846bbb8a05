#include "ir/weight_type.h"

#include <cassert>
#include <cstdio>
#include <cstdlib>

namespace qlc {

const Attribute *WeightType::param(llvm::StringRef name) const {
  auto it = params.find(name.str());
  return it == params.end() ? nullptr : &it->second;
}
int64_t WeightType::intParam(llvm::StringRef name) const {
  const Attribute *a = param(name);
  assert(a && a->isInt() && "missing integer parameter");
  return a->getInt();
}
bool WeightType::boolParam(llvm::StringRef name) const {
  const Attribute *a = param(name);
  assert(a && a->kind() == AttrKind::Bool && "missing bool parameter");
  return a->getBool();
}
std::string WeightType::identParam(llvm::StringRef name) const {
  const Attribute *a = param(name);
  assert(a && a->kind() == AttrKind::Ident && "missing identifier parameter");
  return a->getIdent();
}
std::vector<int64_t> WeightType::intArrayParam(llvm::StringRef name) const {
  const Attribute *a = param(name);
  assert(a && a->kind() == AttrKind::IntArray && "missing list parameter");
  return a->getIntArray();
}

int64_t WeightType::experts() const {
  const Attribute *a = param("experts");
  return a && a->isInt() ? a->getInt() : 0;
}

std::vector<int64_t> WeightType::logicalShape() const {
  std::vector<int64_t> s = def->logicalShape(*this);
  if (int64_t e = experts())
    s.insert(s.begin(), e);
  return s;
}

std::vector<PartSpec> WeightType::expectedParts() const {
  std::vector<PartSpec> parts = def->parts(*this);
  if (int64_t e = experts())
    for (PartSpec &p : parts) {
      p.shape.insert(p.shape.begin(), e);
      if (p.nDim >= 0)
        ++p.nDim;
    }
  return parts;
}

std::string WeightType::str() const {
  std::string s = "!" + def->mnemonic + "<";
  bool first = true;
  for (const ParamSpec &p : def->params) {
    auto it = params.find(p.name);
    if (it == params.end() || (p.defaultValue && *p.defaultValue == it->second))
      continue;
    if (!first)
      s += ", ";
    first = false;
    s += p.name + " = " + it->second.str();
  }
  return s + ">";
}

WeightTypeRegistry &WeightTypeRegistry::get() {
  static WeightTypeRegistry r;
  return r;
}

const WeightTypeDef *WeightTypeRegistry::add(WeightTypeDef def) {
  if (lookup(def.mnemonic)) {
    std::fprintf(stderr, "qlc: weight type !%s registered twice\n", def.mnemonic.c_str());
    std::abort();
  }
  // Every weight type can be expert-stacked: `experts = E` prefixes [E] to shape and parts.
  def.params.push_back({"experts", AttrKind::Int, Attribute(int64_t(0)), {},
                        "number of stacked experts (0 = a plain weight)"});
  defs_.push_back(std::make_unique<WeightTypeDef>(std::move(def)));
  return defs_.back().get();
}

const WeightTypeDef *WeightTypeRegistry::lookup(llvm::StringRef mnemonic) const {
  for (const auto &d : defs_)
    if (d->mnemonic == mnemonic)
      return d.get();
  return nullptr;
}

std::vector<const WeightTypeDef *> WeightTypeRegistry::all() const {
  std::vector<const WeightTypeDef *> v;
  for (const auto &d : defs_)
    v.push_back(d.get());
  return v;
}

static bool kindMatches(AttrKind want, const Attribute &a) {
  if (want == a.kind())
    return true;
  return want == AttrKind::Float && a.kind() == AttrKind::Int; // 1 is a fine float
}

std::optional<WeightType> WeightTypeRegistry::build(const WeightTypeDef *def, const AttrDict &given,
                                                    std::string &error) const {
  WeightType t;
  t.def = def;
  for (const auto &[k, v] : given) {
    const ParamSpec *spec = nullptr;
    for (const ParamSpec &p : def->params)
      if (p.name == k)
        spec = &p;
    if (!spec) {
      std::string names;
      for (const ParamSpec &p : def->params)
        names += (names.empty() ? "" : ", ") + p.name;
      error = "unknown parameter '" + k + "' for !" + def->mnemonic + " (expected: " + names + ")";
      return std::nullopt;
    }
    if (!kindMatches(spec->kind, v)) {
      error = "parameter '" + k + "' of !" + def->mnemonic + " must be " +
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
        error = "parameter '" + k + "' of !" + def->mnemonic + " must be one of " + list +
                ", got " + v.getIdent();
        return std::nullopt;
      }
    }
    t.params[k] = spec->kind == AttrKind::Float ? Attribute(v.getNumber()) : v;
  }
  for (const ParamSpec &p : def->params) {
    if (t.params.count(p.name))
      continue;
    if (!p.defaultValue) {
      error = "missing parameter '" + p.name + "' of !" + def->mnemonic;
      return std::nullopt;
    }
    t.params[p.name] = *p.defaultValue;
  }
  if (t.experts() < 0) {
    error = "experts = " + std::to_string(t.experts()) + " must not be negative";
    return std::nullopt;
  }
  if (def->verify) {
    error = def->verify(t);
    if (!error.empty())
      return std::nullopt;
  }
  return t;
}

} // namespace qlc
