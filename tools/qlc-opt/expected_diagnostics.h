// --verify-diagnostics: `// expected-error @+1 {{text}}` comments are matched against the
// diagnostics a run produces; unmatched expectations and unexpected diagnostics are errors.
#pragma once
#include <string>
#include <vector>

#include "llvm/ADT/StringRef.h"

#include "ir/diagnostics.h"

namespace qlc {

class ExpectedDiagnostics {
public:
  /// Scans `text` (the buffer named `file`) for expectations. Malformed expectation comments are
  /// reported through `diag` immediately.
  ExpectedDiagnostics(llvm::StringRef text, std::string file, DiagnosticEngine &diag);

  /// Handler for the run's DiagnosticEngine: records every diagnostic.
  void record(const Diagnostic &d);

  /// Reports mismatches through `diag` (which prints) and returns true if everything matched.
  bool check(DiagnosticEngine &diag);

private:
  struct Expected {
    Severity severity;
    unsigned line;       // the line the diagnostic must be on
    unsigned commentLine, commentCol;
    std::string text;
    bool matched = false;
  };
  std::string file_;
  std::vector<Expected> expected_;
  std::vector<Diagnostic> seen_;
  bool malformed_ = false;
};

} // namespace qlc
