// dce: removes pure ops whose results are unused and weight symbols no op references.
#include <set>

#include "passes/pass.h"

namespace qlc {
namespace {

class DcePass : public Pass {
public:
  llvm::LogicalResult run(Module &m, PassContext &) override {
    for (const auto &f : m.functions()) {
      // Walk backwards so a chain of dead ops goes in one sweep.
      bool changed = true;
      while (changed) {
        changed = false;
        for (auto it = f->ops().rbegin(); it != f->ops().rend();) {
          Operation &op = **it++;
          if (!op.isPure())
            continue;
          bool used = false;
          for (Value *r : op.results())
            used |= f->numUses(r) != 0;
          if (used)
            continue;
          f->erase(&op);
          addStatistic("ops-erased");
          changed = true;
          break; // iterators are invalid after erase; restart the sweep
        }
      }
    }
    std::set<std::string> referenced;
    for (const auto &f : m.functions())
      for (const auto &op : f->ops())
        referenced.insert(op->symbols().begin(), op->symbols().end());
    std::vector<std::string> dead;
    for (const auto &w : m.weights())
      if (!referenced.count(w->name()))
        dead.push_back(w->name());
    for (const std::string &n : dead) {
      m.eraseWeight(n);
      addStatistic("weights-erased");
    }
    return llvm::success();
  }
};

} // namespace

void registerDcePass() {
  PassRegistry::get().add({"dce", "remove unused pure ops and unreferenced weight symbols",
                           "Erases ops without side effects whose results have no uses, then "
                           "weight symbols that no op of any function names.",
                           {}, [] { return std::make_unique<DcePass>(); }});
}

} // namespace qlc
