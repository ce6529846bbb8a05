// Textual form of a module. print(parse(print(m))) == print(m).
#pragma once
#include <string>

namespace llvm {
class raw_ostream;
}

namespace qlc {
class Module;

struct PrintOptions {
  bool locations = false; // append loc("file":line:col) to ops and weights
  /// Inline data larger than this is printed as `hex<N bytes elided>` (0 = print all). Elided
  /// output does not parse back; it is for humans reading large modules.
  size_t elideInlineBytes = 0;
};

void printModule(const Module &m, llvm::raw_ostream &os, const PrintOptions &opts = {});
std::string printModuleToString(const Module &m, const PrintOptions &opts = {});

} // namespace qlc
