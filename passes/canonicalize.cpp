// canonicalize: folds identity ops (convert/reshape to the same type, reshape of reshape) and
// removes duplicate pure ops (CSE), until nothing changes.
#include <map>
#include <tuple>

#include "ir/op_registry.h"
#include "passes/pass.h"

namespace qlc {
namespace {

/// Everything that makes two pure ops compute the same value.
using OpKey = std::tuple<const OpDef *, std::vector<Value *>, std::vector<std::string>, std::string,
                         std::vector<std::string>>;

OpKey keyOf(const Operation &op) {
  std::vector<std::string> types;
  for (Value *r : op.results())
    types.push_back(r->type().str());
  return {op.def(), op.operands(), op.symbols(), attrDictStr(op.attrs()), types};
}

class CanonicalizePass : public Pass {
public:
  llvm::LogicalResult run(Module &m, PassContext &) override {
    for (const auto &f : m.functions()) {
      bool changed = true;
      while (changed) {
        changed = fold(*f) | cse(*f);
      }
    }
    return llvm::success();
  }

private:
  bool fold(Function &f) {
    bool changed = false;
    for (auto it = f.ops().begin(); it != f.ops().end();) {
      Operation &op = **it++;
      if (!op.def()->fold || op.numResults() != 1)
        continue;
      Value *repl = op.def()->fold(op);
      if (!repl)
        continue;
      changed = true;
      if (repl == op.result(0)) { // folded in place
        addStatistic("ops-folded-in-place");
        continue;
      }
      f.replaceAllUsesWith(op.result(0), repl);
      f.erase(&op);
      addStatistic("ops-folded");
    }
    return changed;
  }

  bool cse(Function &f) {
    bool changed = false;
    std::map<OpKey, Operation *> seen;
    for (auto it = f.ops().begin(); it != f.ops().end();) {
      Operation &op = **it++;
      if (!op.isPure() || op.numResults() == 0)
        continue;
      auto [pos, inserted] = seen.emplace(keyOf(op), &op);
      if (inserted)
        continue;
      for (unsigned i = 0; i < op.numResults(); ++i)
        f.replaceAllUsesWith(op.result(i), pos->second->result(i));
      f.erase(&op);
      addStatistic("ops-cse");
      changed = true;
    }
    return changed;
  }
};

} // namespace

void registerCanonicalizePass() {
  PassRegistry::get().add(
      {"canonicalize", "fold identity ops and merge duplicate pure ops (CSE)",
       "Folds convert/reshape to the operand's own type, reshape(reshape(x)) to one reshape, and "
       "replaces an op identical to an earlier one (same op, operands, weights, attributes and "
       "result types) by the earlier one's results. Iterates to a fixed point.",
       {}, [] { return std::make_unique<CanonicalizePass>(); }});
}

} // namespace qlc
