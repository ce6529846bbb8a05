#include "ir/ir.h"

#include <cassert>
#include <cstdio>
#include <cstdlib>
#include <unordered_map>

#include "ir/op_registry.h"

namespace qlc {

//===----------------------------------------------------------------------===//
// Operation
//===----------------------------------------------------------------------===//

Operation::Operation(const OpDef *def, Location loc) : def_(def), loc_(std::move(loc)) {
  assert(def && "op without a definition");
}

const std::string &Operation::name() const { return def_->name; }

const Attribute *Operation::attr(llvm::StringRef name) const {
  auto it = attrs_.find(name.str());
  return it == attrs_.end() ? nullptr : &it->second;
}

std::vector<Value *> Operation::results() const {
  std::vector<Value *> r;
  for (const auto &v : results_)
    r.push_back(v.get());
  return r;
}

Value *Operation::addResult(TensorType t, std::string nameHint) {
  results_.push_back(std::make_unique<Value>(std::move(t), std::move(nameHint)));
  Value *v = results_.back().get();
  v->def_ = this;
  v->index_ = unsigned(results_.size() - 1);
  return v;
}

bool Operation::isPure() const { return def_->pure; }
bool Operation::isTerminator() const { return def_->terminator; }

//===----------------------------------------------------------------------===//
// Function
//===----------------------------------------------------------------------===//

Value *Function::addArgument(TensorType t, std::string nameHint) {
  args_.push_back(std::make_unique<Value>(std::move(t), std::move(nameHint)));
  Value *v = args_.back().get();
  v->index_ = unsigned(args_.size() - 1);
  return v;
}

std::vector<Value *> Function::arguments() const {
  std::vector<Value *> r;
  for (const auto &v : args_)
    r.push_back(v.get());
  return r;
}

Operation *Function::append(std::unique_ptr<Operation> op) {
  op->parent_ = this;
  ops_.push_back(std::move(op));
  return ops_.back().get();
}

OpList::iterator Function::find(Operation *op) {
  for (auto it = ops_.begin(); it != ops_.end(); ++it)
    if (it->get() == op)
      return it;
  return ops_.end();
}

Operation *Function::insertBefore(Operation *before, std::unique_ptr<Operation> op) {
  auto it = find(before);
  assert(it != ops_.end() && "insertion point not in this function");
  op->parent_ = this;
  return ops_.insert(it, std::move(op))->get();
}

void Function::erase(Operation *op) {
  for (Value *r : op->results())
    if (numUses(r) != 0) {
      std::fprintf(stderr, "qlc: erasing '%s' whose result still has uses\n", op->name().c_str());
      std::abort();
    }
  auto it = find(op);
  assert(it != ops_.end() && "op not in this function");
  ops_.erase(it);
}

void Function::replaceAllUsesWith(Value *from, Value *to) {
  for (auto &op : ops_)
    for (unsigned i = 0; i < op->operands().size(); ++i)
      if (op->operand(i) == from)
        op->setOperand(i, to);
}

unsigned Function::numUses(const Value *v) const {
  unsigned n = 0;
  for (const auto &op : ops_)
    for (Value *o : op->operands())
      n += o == v;
  return n;
}

Operation *Function::terminator() const {
  if (ops_.empty() || !ops_.back()->isTerminator())
    return nullptr;
  return ops_.back().get();
}

//===----------------------------------------------------------------------===//
// Weight
//===----------------------------------------------------------------------===//

std::string weightSymbolTypeStr(const WeightSymbolType &t) {
  if (auto *tt = std::get_if<TensorType>(&t))
    return tt->str();
  return std::get<WeightType>(t).str();
}

std::vector<int64_t> Weight::logicalShape() const {
  if (isDense())
    return denseType().dims;
  return quantType().logicalShape();
}

// A rank-3 dense weight is an expert stack [E, N, K] (there is no other use for rank 3).
int64_t Weight::experts() const {
  if (isDense())
    return denseType().rank() == 3 ? denseType().dims[0] : 0;
  return quantType().experts();
}

const WeightPart *Weight::part(llvm::StringRef name) const {
  for (const WeightPart &p : parts_)
    if (p.name == name)
      return &p;
  return nullptr;
}
WeightPart *Weight::part(llvm::StringRef name) {
  for (WeightPart &p : parts_)
    if (p.name == name)
      return &p;
  return nullptr;
}

//===----------------------------------------------------------------------===//
// Module
//===----------------------------------------------------------------------===//

Weight *Module::addWeight(std::unique_ptr<Weight> w) {
  if (weightIndex_.count(w->name()))
    return nullptr;
  Weight *raw = w.get();
  weightIndex_[w->name()] = raw;
  weights_.push_back(std::move(w));
  return raw;
}

Weight *Module::lookupWeight(llvm::StringRef name) const {
  auto it = weightIndex_.find(name);
  return it == weightIndex_.end() ? nullptr : it->second;
}

void Module::eraseWeight(llvm::StringRef name) {
  auto it = weightIndex_.find(name);
  if (it == weightIndex_.end())
    return;
  Weight *w = it->second;
  weightIndex_.erase(it);
  std::erase_if(weights_, [&](const std::unique_ptr<Weight> &p) { return p.get() == w; });
}

Function *Module::addFunction(std::unique_ptr<Function> f) {
  if (funcIndex_.count(f->name()))
    return nullptr;
  Function *raw = f.get();
  funcIndex_[f->name()] = raw;
  funcs_.push_back(std::move(f));
  return raw;
}

Function *Module::lookupFunction(llvm::StringRef name) const {
  auto it = funcIndex_.find(name);
  return it == funcIndex_.end() ? nullptr : it->second;
}

std::unique_ptr<Module> Module::clone() const {
  auto m = std::make_unique<Module>();
  m->attrs_ = attrs_;
  for (const auto &w : weights_) {
    auto nw = std::make_unique<Weight>(w->name(), w->type(), w->loc());
    nw->parts() = w->parts();
    m->addWeight(std::move(nw));
  }
  for (const auto &f : funcs_) {
    auto nf = std::make_unique<Function>(f->name(), f->loc());
    std::unordered_map<const Value *, Value *> map;
    for (Value *a : f->arguments())
      map[a] = nf->addArgument(a->type(), a->nameHint());
    nf->setResultTypes(f->resultTypes());
    for (const auto &op : f->ops()) {
      auto nop = std::make_unique<Operation>(op->def(), op->loc());
      std::vector<Value *> operands;
      for (Value *o : op->operands())
        operands.push_back(map.at(o));
      nop->setOperands(std::move(operands));
      nop->setSymbols(op->symbols());
      nop->attrs() = op->attrs();
      for (Value *r : op->results())
        map[r] = nop->addResult(r->type(), r->nameHint());
      nf->append(std::move(nop));
    }
    m->addFunction(std::move(nf));
  }
  return m;
}

} // namespace qlc
