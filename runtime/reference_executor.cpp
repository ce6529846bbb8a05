#include "runtime/reference_executor.h"

#include <cstdio>
#include <cstdlib>
#include <mutex>

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
  // One lock over lookup and dequantization: concurrent callers of one weight dequantize it once,
  // and map nodes never move, so the returned pointer stays valid.
  std::lock_guard<std::mutex> lock(weightsMu_);
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

llvm::Expected<std::vector<Tensor>> ReferenceExecutor::run(llvm::StringRef funcName,
                                                           const std::vector<Tensor> &inputs) {
  return runFunction(m_, funcName, inputs,
                     [&](const Operation &op, const std::vector<const Tensor *> &ins,
                         std::vector<Tensor> &outs) -> llvm::Error {
                       auto it = opTable().find(op.name());
                       if (it == opTable().end())
                         return opError(op, "has no reference implementation");
                       return it->second(*this, op, ins, outs);
                     });
}

} // namespace qlc
