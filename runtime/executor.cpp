#include "runtime/executor.h"

#include <unordered_map>

#include "runtime/reference_executor.h"

namespace qlc {

Executor::~Executor() = default;

bool shapeFits(const std::vector<int64_t> &shape, const TensorType &t) {
  if (shape.size() != t.rank())
    return false;
  for (size_t i = 0; i < shape.size(); ++i)
    if (!dimsCompatible(shape[i], t.dims[i]))
      return false;
  return true;
}

llvm::Expected<std::vector<Tensor>> runFunction(const Module &m, llvm::StringRef funcName,
                                                const std::vector<Tensor> &inputs, OpRunner runOp) {
  auto fail = [](const llvm::Twine &msg) {
    return llvm::createStringError(llvm::inconvertibleErrorCode(), msg);
  };
  const Function *f = m.lookupFunction(funcName);
  if (!f)
    return fail("no function @" + funcName + " in the module");
  if (inputs.size() != f->numArguments())
    return fail("@" + funcName + " takes " + llvm::Twine(f->numArguments()) + " inputs, got " +
                llvm::Twine(inputs.size()));
  std::unordered_map<const Value *, Tensor> env;
  for (unsigned i = 0; i < f->numArguments(); ++i) {
    const TensorType &t = f->argument(i)->type();
    if (inputs[i].elem() != t.elem || !shapeFits(inputs[i].shape(), t))
      return fail("input #" + llvm::Twine(i) + " of @" + funcName + " is " + inputs[i].typeStr() +
                  " but the function takes " + t.str());
    env[f->argument(i)] = inputs[i];
  }
  // Each value is dropped after the op that reads it last, so a long function holds only its
  // live tensors.
  std::unordered_map<const Value *, const Operation *> lastUse;
  for (const auto &opPtr : f->ops())
    for (Value *v : opPtr->operands())
      lastUse[v] = opPtr.get();
  for (const auto &opPtr : f->ops()) {
    const Operation &op = *opPtr;
    std::vector<const Tensor *> ins;
    for (Value *v : op.operands())
      ins.push_back(&env.at(v));
    if (op.isTerminator()) {
      std::vector<Tensor> outs;
      for (const Tensor *t : ins)
        outs.push_back(*t);
      return outs;
    }
    std::vector<Tensor> outs;
    if (llvm::Error e = runOp(op, ins, outs))
      return e;
    if (outs.size() != op.numResults())
      return opError(op, "produced " + llvm::Twine(outs.size()) + " results, declares " +
                             llvm::Twine(op.numResults()));
    for (unsigned i = 0; i < op.numResults(); ++i) {
      const TensorType &t = op.result(i)->type();
      if (outs[i].elem() != t.elem || !shapeFits(outs[i].shape(), t))
        return opError(op, "result #" + llvm::Twine(i) + " is " + outs[i].typeStr() +
                               " but the op declares " + t.str());
      env[op.result(i)] = std::move(outs[i]);
    }
    for (Value *v : op.operands())
      if (lastUse[v] == &op)
        env.erase(v);
  }
  return fail("@" + funcName + " has no return");
}

} // namespace qlc
