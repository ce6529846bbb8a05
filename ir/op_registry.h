// Op definitions: one table row per op (name, summary, operand/symbol counts, attributes, result
// type inference + verification, folding). Core ops are registered by ir/core_ops.cpp; backend ops
// by the folders that own them.
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ir/ir.h"

namespace qlc {

struct AttrSpec {
  std::string name;
  AttrKind kind;
  std::optional<Attribute> defaultValue; // nullopt = required
  std::vector<std::string> choices;      // allowed identifiers, for AttrKind::Ident
  std::string doc;
};

/// Inputs of type inference: the op (operands, symbols, attributes), the module (weight symbols)
/// and, when the text or the builder gave them, the declared result types.
struct InferInput {
  const Operation &op;
  const Module &module;
  const std::vector<TensorType> *declared; // null if not given

  /// Attribute value or its registered default.
  const Attribute &attr(llvm::StringRef name) const;
  const Weight *weight(unsigned i) const { return module.lookupWeight(op.symbols().at(i)); }
};

/// Returns the result types, or nullopt with `error` set to a message saying what is wrong.
using InferFn = std::function<std::optional<std::vector<TensorType>>(const InferInput &,
                                                                     std::string &error)>;
/// Returns a value that replaces the op's only result, or null if the op does not fold.
using FoldFn = std::function<Value *(Operation &)>;

struct OpDef {
  std::string name;
  std::string summary;
  std::string syntax; // for docs and --help
  unsigned minOperands = 0, maxOperands = 0;
  unsigned minSymbols = 0, maxSymbols = 0;
  bool pure = true;
  bool terminator = false;
  /// Attributes beyond `attrs` are allowed (backend ops that carry a weight type's parameters as
  /// their specialisation); the op's infer checks them.
  bool openAttrs = false;
  std::vector<AttrSpec> attrs;
  InferFn infer;
  FoldFn fold;

  const AttrSpec *attrSpec(llvm::StringRef n) const;
};

class OpRegistry {
public:
  static OpRegistry &get();
  /// Registers an op; a duplicate name is a programmer error (aborts).
  const OpDef *add(OpDef def);
  const OpDef *lookup(llvm::StringRef name) const;
  std::vector<const OpDef *> all() const;

private:
  std::vector<std::unique_ptr<OpDef>> defs_;
};

/// Registers linear, moe, embedding, matmul, add, mul, silu, gelu, softmax, topk, rms_norm,
/// convert, reshape, return. Idempotent.
void registerCoreOps();

/// Runs the op's inference and attribute checks. Returns the inferred types, or nullopt with
/// `error` describing the first problem.
std::optional<std::vector<TensorType>> inferResultTypes(const Operation &op, const Module &m,
                                                        const std::vector<TensorType> *declared,
                                                        std::string &error);

} // namespace qlc
