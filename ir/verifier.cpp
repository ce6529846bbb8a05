#include "ir/verifier.h"

#include <set>

#include "ir/diagnostics.h"
#include "ir/ir.h"
#include "ir/op_registry.h"

namespace qlc {
namespace {

std::string elemList(const std::vector<ElemKind> &e) {
  std::string s;
  for (size_t i = 0; i < e.size(); ++i)
    s += (i ? (i + 1 == e.size() ? " or " : ", ") : "") + elemKindName(e[i]).str();
  return s;
}

bool verifyWeight(const Weight &w, DiagnosticEngine &diag) {
  bool ok = true;
  auto fail = [&](const Location &loc, std::string msg) {
    diag.error(loc, std::move(msg));
    ok = false;
  };
  std::vector<PartSpec> expected;
  std::string typeStr = weightSymbolTypeStr(w.type());
  if (w.isDense()) {
    const TensorType &t = w.denseType();
    if (!t.isStatic()) {
      fail(w.loc(), "weight @" + w.name() + " has a dynamic shape " + t.str());
      return false;
    }
    expected.push_back({"data", {t.elem}, t.dims, false, t.rank() == 3 ? 1 : 0, 1});
  } else {
    const WeightType &qt = w.quantType();
    if (qt.def->verify) {
      std::string err = qt.def->verify(qt);
      if (!err.empty()) {
        fail(w.loc(), "weight @" + w.name() + ": " + err);
        return false;
      }
    }
    expected = qt.expectedParts();
  }
  for (const WeightPart &p : w.parts()) {
    const PartSpec *spec = nullptr;
    for (const PartSpec &s : expected)
      if (s.name == p.name)
        spec = &s;
    if (!spec) {
      std::string names;
      for (const PartSpec &s : expected)
        names += (names.empty() ? "" : ", ") + s.name;
      fail(p.loc, "weight @" + w.name() + " of type " + typeStr + " has no part '" + p.name +
                      "' (its parts are: " + names + ")");
      continue;
    }
    if (std::find(spec->elems.begin(), spec->elems.end(), p.type.elem) == spec->elems.end())
      fail(p.loc, "part '" + p.name + "' of weight @" + w.name() + " must have element type " +
                      elemList(spec->elems) + ", got " + p.type.str());
    else if (p.type.dims != spec->shape)
      fail(p.loc, "part '" + p.name + "' of weight @" + w.name() + " has shape " +
                      dimsStr(p.type.dims) + " but " + typeStr + " needs " + dimsStr(spec->shape));
    else if (p.isInline()) {
      auto bytes = p.type.numBytes();
      if (!bytes || int64_t(p.data->size()) != *bytes)
        fail(p.loc, "part '" + p.name + "' of weight @" + w.name() + " has " +
                        std::to_string(p.data->size()) + " bytes of data but " + p.type.str() +
                        " needs " + (bytes ? std::to_string(*bytes) : std::string("?")));
    } else if (p.sources.empty() || p.sources[0].empty()) {
      fail(p.loc, "part '" + p.name + "' of weight @" + w.name() + " names no source tensor");
    } else if (p.sources.size() > 1 &&
               (p.type.rank() == 0 || p.type.dims[0] != int64_t(p.sources.size()))) {
      fail(p.loc, "part '" + p.name + "' of weight @" + w.name() + " stacks " +
                      std::to_string(p.sources.size()) + " tensors, so its leading dim must be " +
                      std::to_string(p.sources.size()) + ", got " + p.type.str());
    }
  }
  for (const PartSpec &s : expected)
    if (!s.optional && !w.part(s.name))
      fail(w.loc(), "weight @" + w.name() + " of type " + typeStr + " is missing part '" + s.name +
                        "' (" + s.name + " = " + TensorType(s.elems.front(), s.shape).str() + ")");
  return ok;
}

bool verifyFunction(const Function &f, const Module &m, DiagnosticEngine &diag) {
  bool ok = true;
  std::set<const Value *> defined;
  for (Value *a : f.arguments())
    defined.insert(a);
  for (const auto &opPtr : f.ops()) {
    const Operation &op = *opPtr;
    bool opOk = true;
    for (Value *v : op.operands())
      if (!defined.count(v)) {
        diag.error(op.loc(), "'" + op.name() + "' uses a value that is not defined before it in @" +
                                 f.name());
        opOk = false;
        break;
      }
    if (op.isTerminator() && opPtr.get() != f.ops().back().get()) {
      diag.error(op.loc(), "'" + op.name() + "' must be the last op of @" + f.name());
      opOk = false;
    }
    if (opOk) {
      std::vector<TensorType> declared;
      for (Value *r : op.results())
        declared.push_back(r->type());
      std::string err;
      if (!inferResultTypes(op, m, &declared, err)) {
        diag.error(op.loc(), err);
        opOk = false;
      }
    }
    ok &= opOk;
    for (Value *r : op.results())
      defined.insert(r);
  }
  Operation *term = f.terminator();
  if (!term) {
    diag.error(f.loc(), "function @" + f.name() + " must end with 'return'");
    return false;
  }
  const auto &rt = f.resultTypes();
  if (term->operands().size() != rt.size()) {
    auto count = [](size_t n, const char *what) {
      return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
    };
    diag.error(term->loc(), "'return' has " + count(term->operands().size(), "operand") +
                                " but @" + f.name() + " returns " + count(rt.size(), "value"));
    return false;
  }
  for (size_t i = 0; i < rt.size(); ++i)
    if (!typesCompatible(term->operand(unsigned(i))->type(), rt[i])) {
      diag.error(term->loc(), "'return' operand #" + std::to_string(i) + " has type " +
                                  term->operand(unsigned(i))->type().str() + " but @" + f.name() +
                                  " returns " + rt[i].str());
      ok = false;
    }
  return ok;
}

} // namespace

llvm::LogicalResult verifyModule(const Module &m, DiagnosticEngine &diag) {
  registerCoreOps();
  bool ok = true;
  for (const auto &w : m.weights())
    ok &= verifyWeight(*w, diag);
  for (const auto &f : m.functions())
    ok &= verifyFunction(*f, m, diag);
  return llvm::success(ok);
}

} // namespace qlc
