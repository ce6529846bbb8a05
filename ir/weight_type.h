// Scheme-defined weight types (`!awq<...>`, `!gguf<...>`, ...). The core parser knows none of them:
// each scheme registers a WeightTypeDef naming its parameters, its parts and their shapes.
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <map>

#include "llvm/ADT/ArrayRef.h"

#include "ir/attributes.h"
#include "ir/types.h"

namespace qlc {

struct WeightType;
/// One part's bytes and element type, as a dequantize hook sees it.
struct PartView {
  ElemKind elem;
  llvm::ArrayRef<uint8_t> bytes;
};
/// The parts of one weight (or of one expert of a stack), by part name.
using PartBytesMap = std::map<std::string, PartView, std::less<>>;

/// One `key = value` parameter of a weight type.
struct ParamSpec {
  std::string name;
  AttrKind kind;
  std::optional<Attribute> defaultValue; // nullopt = required
  std::vector<std::string> choices;      // allowed identifiers, for AttrKind::Ident
  std::string doc;
};

/// One named part (checkpoint tensor) of a quantized weight, with the shape the type implies.
struct PartSpec {
  std::string name;
  std::vector<ElemKind> elems; // allowed element types
  std::vector<int64_t> shape;
  bool optional = false;
  /// The dim of the (per-expert) part that runs along N, the output channels, or -1 if the part
  /// does not depend on N (e.g. g_idx). Two weights concatenate along N (w13 = [gate ; up]) by
  /// concatenating each part along nDim, provided N is a multiple of `nAlign` (the channels packed
  /// together: 8 for AWQ 4-bit qweight words, 32 for GPTQ 3-bit qzeros). Lets generic passes
  /// merge weights without knowing the scheme.
  int nDim = -1;
  int nAlign = 1;
};

struct WeightTypeDef {
  std::string mnemonic; // without the '!'
  std::string summary;
  std::vector<ParamSpec> params; // the generic `experts` parameter is added by the registry
  /// Relations between parameters (bits in range, group divides K...). Returns "" if valid, else
  /// a message that says what is wrong and what would fit.
  std::function<std::string(const WeightType &)> verify;
  /// Logical (dequantized) shape of one expert, HF orientation: [N, K] for a linear weight.
  std::function<std::vector<int64_t>(const WeightType &)> logicalShape;
  /// Parts of one expert and their shapes (the registry prefixes [E] for expert-stacked weights).
  std::function<std::vector<PartSpec>(const WeightType &)> parts;
  /// Reference dequantization of ONE expert (or the whole plain weight) to f32 in the logical
  /// [N, K] layout, row-major, into `out` (N*K floats). `parts` maps each present part name to its
  /// bytes (already checked against the part shapes by the verifier). Returns "" or an error about
  /// the data itself (e.g. a g_idx entry out of range). The scalar oracle of every numeric test.
  std::function<std::string(const WeightType &, const PartBytesMap &parts, float *out)> dequantize;
};

/// A weight type: a registered definition and its parameter values (defaults filled in).
struct WeightType {
  const WeightTypeDef *def = nullptr;
  AttrDict params;

  const std::string &mnemonic() const { return def->mnemonic; }
  const Attribute *param(llvm::StringRef name) const;
  int64_t intParam(llvm::StringRef name) const;   // asserts the param exists and is an int
  bool boolParam(llvm::StringRef name) const;     // likewise for bools
  std::string identParam(llvm::StringRef name) const;
  std::vector<int64_t> intArrayParam(llvm::StringRef name) const;
  /// Number of stacked experts, 0 for a plain weight.
  int64_t experts() const;
  /// Logical shape including the leading [E] of expert-stacked weights.
  std::vector<int64_t> logicalShape() const;
  /// Expected parts including the leading [E] of expert-stacked weights (nDim counts it).
  std::vector<PartSpec> expectedParts() const;
  /// `!awq<bits = 4, ...>`; parameters equal to their default are not printed.
  std::string str() const;
  friend bool operator==(const WeightType &a, const WeightType &b) {
    return a.def == b.def && a.params == b.params;
  }
};

/// Global table of weight types, filled by the schemes' register functions.
class WeightTypeRegistry {
public:
  static WeightTypeRegistry &get();
  /// Registers a definition; a duplicate mnemonic is a programmer error (aborts).
  const WeightTypeDef *add(WeightTypeDef def);
  const WeightTypeDef *lookup(llvm::StringRef mnemonic) const;
  std::vector<const WeightTypeDef *> all() const;

  /// Builds a type from parsed parameters: unknown or missing parameters, wrong kinds and the
  /// scheme's own relations are reported in `error` (nullopt returned).
  std::optional<WeightType> build(const WeightTypeDef *def, const AttrDict &given,
                                  std::string &error) const;

private:
  std::vector<std::unique_ptr<WeightTypeDef>> defs_;
};

} // namespace qlc
