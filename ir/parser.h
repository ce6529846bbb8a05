// Recursive-descent parser of the textual IR (docs/ir.md). Errors are reported through the
// DiagnosticEngine as `file:line:col: error: ...` with the source line and a caret.
#pragma once
#include <memory>

#include "llvm/ADT/StringRef.h"

namespace llvm {
class SourceMgr;
}

namespace qlc {
class Module;
class DiagnosticEngine;

/// Parses buffer `bufferId` of `sm`. Returns null after reporting the first error. The module is
/// not verified here (see verifier.h); only what the parser needs (names, types of results) is
/// checked.
std::unique_ptr<Module> parseModule(llvm::SourceMgr &sm, unsigned bufferId, DiagnosticEngine &diag);

/// Adds `text` to `sm` as a buffer named `name` and parses it.
std::unique_ptr<Module> parseModuleString(llvm::StringRef text, llvm::StringRef name,
                                          llvm::SourceMgr &sm, DiagnosticEngine &diag);

} // namespace qlc
