// The qlc IR: a Module holds weight symbols and functions; a function is a list of ops over SSA
// values. Ops are generic (name, operands, weight symbol references, attributes, results); their
// semantics live in the OpRegistry (op_registry.h).
#pragma once
#include <list>
#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "ir/attributes.h"
#include "ir/location.h"
#include "ir/types.h"
#include "ir/weight_type.h"

namespace qlc {

class Operation;
class Function;
struct OpDef;

/// An SSA value: a function argument or an op result. Always tensor-typed.
class Value {
public:
  Value(TensorType type, std::string nameHint) : type_(std::move(type)), name_(std::move(nameHint)) {}
  const TensorType &type() const { return type_; }
  void setType(TensorType t) { type_ = std::move(t); }
  /// Name from the source (`%x` -> "x"), or empty; the printer keeps it when unique.
  const std::string &nameHint() const { return name_; }
  void setNameHint(std::string n) { name_ = std::move(n); }
  /// The op producing this value, or null for a function argument.
  Operation *definingOp() const { return def_; }
  unsigned index() const { return index_; }

private:
  friend class Operation;
  friend class Function;
  TensorType type_;
  std::string name_;
  Operation *def_ = nullptr;
  unsigned index_ = 0;
};

class Operation {
public:
  Operation(const OpDef *def, Location loc);
  Operation(const Operation &) = delete;
  Operation &operator=(const Operation &) = delete;

  const OpDef *def() const { return def_; }
  const std::string &name() const;
  const Location &loc() const { return loc_; }
  void setLoc(Location l) { loc_ = std::move(l); }
  Function *parent() const { return parent_; }

  const std::vector<Value *> &operands() const { return operands_; }
  Value *operand(unsigned i) const { return operands_.at(i); }
  void setOperands(std::vector<Value *> ops) { operands_ = std::move(ops); }
  void setOperand(unsigned i, Value *v) { operands_.at(i) = v; }

  /// Weight symbols this op reads (`@w`), printed after the SSA operands.
  const std::vector<std::string> &symbols() const { return symbols_; }
  void setSymbols(std::vector<std::string> s) { symbols_ = std::move(s); }

  const AttrDict &attrs() const { return attrs_; }
  AttrDict &attrs() { return attrs_; }
  const Attribute *attr(llvm::StringRef name) const;
  void setAttr(std::string name, Attribute a) { attrs_[std::move(name)] = std::move(a); }

  unsigned numResults() const { return unsigned(results_.size()); }
  Value *result(unsigned i) const { return results_.at(i).get(); }
  std::vector<Value *> results() const;
  Value *addResult(TensorType t, std::string nameHint = "");

  bool isPure() const;
  bool isTerminator() const;

private:
  friend class Function;
  const OpDef *def_;
  Location loc_;
  Function *parent_ = nullptr;
  std::vector<Value *> operands_;
  std::vector<std::string> symbols_;
  AttrDict attrs_;
  std::vector<std::unique_ptr<Value>> results_;
};

using OpList = std::list<std::unique_ptr<Operation>>;

class Function {
public:
  Function(std::string name, Location loc) : name_(std::move(name)), loc_(std::move(loc)) {}
  const std::string &name() const { return name_; }
  void setName(std::string n) { name_ = std::move(n); }
  const Location &loc() const { return loc_; }

  Value *addArgument(TensorType t, std::string nameHint);
  unsigned numArguments() const { return unsigned(args_.size()); }
  Value *argument(unsigned i) const { return args_.at(i).get(); }
  std::vector<Value *> arguments() const;

  const std::vector<TensorType> &resultTypes() const { return resultTypes_; }
  void setResultTypes(std::vector<TensorType> t) { resultTypes_ = std::move(t); }

  OpList &ops() { return ops_; }
  const OpList &ops() const { return ops_; }
  /// Appends an op (takes ownership) and returns it.
  Operation *append(std::unique_ptr<Operation> op);
  /// Inserts `op` before `before` (in this function).
  Operation *insertBefore(Operation *before, std::unique_ptr<Operation> op);
  /// Erases an op; its results must have no remaining uses (checked, aborts otherwise).
  void erase(Operation *op);
  /// The op's position, or ops().end().
  OpList::iterator find(Operation *op);

  /// Every use of `from` (as an operand) becomes `to`.
  void replaceAllUsesWith(Value *from, Value *to);
  unsigned numUses(const Value *v) const;
  /// The `return` op, or null.
  Operation *terminator() const;

private:
  std::string name_;
  Location loc_;
  std::vector<std::unique_ptr<Value>> args_;
  std::vector<TensorType> resultTypes_;
  OpList ops_;
};

/// Bytes of a weight part: a reference into the module's checkpoint, or data held in the IR.
struct WeightPart {
  std::string name;
  TensorType type;
  /// Checkpoint tensor(s) holding the part (`from "name"`). Several names (`from ["a", "b"]`)
  /// stack equally shaped tensors along a new leading dim: how per-expert checkpoint tensors
  /// form one expert-stacked part without copying.
  std::vector<std::string> sources;
  std::shared_ptr<const std::vector<uint8_t>> data;  // inline data (`= hex"..."`), or null
  Location loc;

  bool isInline() const { return data != nullptr; }
};

/// The type of a weight symbol: a dense tensor, or a scheme's quantized type.
using WeightSymbolType = std::variant<TensorType, WeightType>;
std::string weightSymbolTypeStr(const WeightSymbolType &t);

class Weight {
public:
  Weight(std::string name, WeightSymbolType type, Location loc)
      : name_(std::move(name)), type_(std::move(type)), loc_(std::move(loc)) {}
  const std::string &name() const { return name_; }
  const Location &loc() const { return loc_; }
  const WeightSymbolType &type() const { return type_; }
  void setType(WeightSymbolType t) { type_ = std::move(t); }
  bool isDense() const { return std::holds_alternative<TensorType>(type_); }
  const TensorType &denseType() const { return std::get<TensorType>(type_); }
  const WeightType &quantType() const { return std::get<WeightType>(type_); }
  /// Dequantized shape (HF orientation, [E] first for expert stacks).
  std::vector<int64_t> logicalShape() const;
  /// Number of stacked experts, 0 for a plain weight.
  int64_t experts() const;

  std::vector<WeightPart> &parts() { return parts_; }
  const std::vector<WeightPart> &parts() const { return parts_; }
  const WeightPart *part(llvm::StringRef name) const;
  WeightPart *part(llvm::StringRef name);

private:
  std::string name_;
  WeightSymbolType type_;
  Location loc_;
  std::vector<WeightPart> parts_;
};

class Module {
public:
  Module() = default;
  Module(const Module &) = delete;
  Module &operator=(const Module &) = delete;

  AttrDict &attrs() { return attrs_; }
  const AttrDict &attrs() const { return attrs_; }

  /// Adds a weight; returns null if the name is taken.
  Weight *addWeight(std::unique_ptr<Weight> w);
  Weight *lookupWeight(llvm::StringRef name) const;
  void eraseWeight(llvm::StringRef name);
  const std::vector<std::unique_ptr<Weight>> &weights() const { return weights_; }

  /// Adds a function; returns null if the name is taken.
  Function *addFunction(std::unique_ptr<Function> f);
  Function *lookupFunction(llvm::StringRef name) const;
  const std::vector<std::unique_ptr<Function>> &functions() const { return funcs_; }

  /// Deep copy (inline weight data is shared, it is immutable).
  std::unique_ptr<Module> clone() const;

private:
  AttrDict attrs_;
  std::vector<std::unique_ptr<Weight>> weights_;
  std::map<std::string, Weight *, std::less<>> weightIndex_;
  std::vector<std::unique_ptr<Function>> funcs_;
  std::map<std::string, Function *, std::less<>> funcIndex_;
};

} // namespace qlc
