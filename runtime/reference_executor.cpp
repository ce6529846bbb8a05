#include "runtime/reference_executor.h"

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <unordered_map>

#include "ir/op_registry.h"
#include "runtime/weight_store.h"

namespace qlc {

void registerCoreReferenceOps(); // reference_ops.cpp

static std::map<std::string, ReferenceOpFn> &opTable() {
  static std::map<std::string, ReferenceOpFn> t;
  return t;
}

void registerReferenceOp(const std::string &opName, ReferenceOpFn fn) {
  if (!opTable().emplace(opName, std::move(fn)).second) {
    std::fprintf(stderr, "qlc: reference op '%s' registered twice\n", opName.c_str());
    std::abort();
  }
}

bool hasReferenceOp(const std::string &opName) {
  registerCoreReferenceOps();
  return opTable().count(opName) != 0;
}

const ReferenceOpFn *lookupReferenceOp(const std::string &opName) {
  registerCoreReferenceOps();
  auto it = opTable().find(opName);
  return it == opTable().end() ? nullptr : &it->second;
}

llvm::Error opError(const Operation &op, const llvm::Twine &msg) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 op.loc().str() + ": '" + op.name() + "' " + msg.str());
}

ReferenceExecutor::ReferenceExecutor(const Module &m, const WeightStore *store)
    : m_(m), store_(store) {
  registerCoreOps();
  registerCoreReferenceOps();
}

llvm::Expected<const std::vector<float> *> ReferenceExecutor::weight(llvm::StringRef name) {
  auto it = weights_.find(name);
  if (it != weights_.end())
    return &it->second;
  const Weight *w = m_.lookupWeight(name);
  if (!w)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "no weight @" + name.str() + " in the module");
  auto data = dequantizeWeight(*w, store_);
  if (!data)
    return data.takeError();
  return &weights_.emplace(name.str(), std::move(*data)).first->second;
}

static bool shapeFits(const std::vector<int64_t> &shape, const TensorType &t) {
  if (shape.size() != t.rank())
    return false;
  for (size_t i = 0; i < shape.size(); ++i)
    if (!dimsCompatible(shape[i], t.dims[i]))
      return false;
  return true;
}

llvm::Expected<std::vector<Tensor>> ReferenceExecutor::run(llvm::StringRef funcName,
                                                           const std::vector<Tensor> &inputs) {
  auto fail = [](const llvm::Twine &msg) {
    return llvm::createStringError(llvm::inconvertibleErrorCode(), msg);
  };
  const Function *f = m_.lookupFunction(funcName);
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
    auto it = opTable().find(op.name());
    if (it == opTable().end())
      return opError(op, "has no reference implementation");
    std::vector<Tensor> outs;
    if (llvm::Error e = it->second(*this, op, ins, outs))
      return std::move(e);
    if (outs.size() != op.numResults())
      return opError(op, "reference produced " + llvm::Twine(outs.size()) + " results");
    for (unsigned i = 0; i < op.numResults(); ++i) {
      const TensorType &t = op.result(i)->type();
      if (outs[i].elem() != t.elem || !shapeFits(outs[i].shape(), t))
        return opError(op, "result #" + llvm::Twine(i) + " is " + outs[i].typeStr() +
                               " but the op declares " + t.str());
      env[op.result(i)] = std::move(outs[i]);
    }
  }
  return fail("@" + funcName + " has no return");
}

} // namespace qlc
