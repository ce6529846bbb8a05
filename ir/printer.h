// Textual form of a module. print(parse(print(m))) == print(m).
#pragma once
#include <string>
#include <unordered_map>

namespace llvm {
class raw_ostream;
}

namespace qlc {
class Module;
class Function;
class Value;

struct PrintOptions {
  bool locations = false; // append loc("file":line:col) to ops and weights
  /// Inline data larger than this is printed as `hex<N bytes elided>` (0 = print all). Elided
  /// output does not parse back; it is for humans reading large modules.
  size_t elideInlineBytes = 0;
};

/// The `%name` the printer gives each argument and result of `f`: its source name where that is
/// unique in the function and lexes as a name, otherwise the next number no source name uses.
/// Executors use it so that their messages name values as the printed IR does.
std::unordered_map<const Value *, std::string> printedValueNames(const Function &f);

void printModule(const Module &m, llvm::raw_ostream &os, const PrintOptions &opts = {});
std::string printModuleToString(const Module &m, const PrintOptions &opts = {});

} // namespace qlc
