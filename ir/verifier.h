// Module verifier: every op's operands, symbols, attributes and result types; every weight's type
// parameters, parts and their shapes and byte sizes; function terminators and value dominance.
#pragma once
#include "llvm/Support/LogicalResult.h"

namespace qlc {
class Module;
class DiagnosticEngine;

/// Reports every problem found (not only the first) and fails if there was any.
llvm::LogicalResult verifyModule(const Module &m, DiagnosticEngine &diag);

} // namespace qlc
