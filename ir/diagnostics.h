// Diagnostics: `file:line:col: error: message`, the source line and a caret, through llvm::SourceMgr.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "ir/location.h"

namespace llvm {
class SourceMgr;
class raw_ostream;
} // namespace llvm

namespace qlc {

enum class Severity { Error, Warning, Note, Remark };
const char *severityName(Severity s);

struct Diagnostic {
  Severity severity = Severity::Error;
  Location loc;
  std::string message;
  std::vector<Diagnostic> notes; // attached notes, printed after the main message
};

/// Collects or prints diagnostics. A handler (e.g. the --verify-diagnostics checker) can take them
/// over; otherwise they are printed to the stream, with the source line when the location's file is
/// a buffer of the attached SourceMgr.
class DiagnosticEngine {
public:
  using Handler = std::function<void(const Diagnostic &)>;

  explicit DiagnosticEngine(llvm::SourceMgr *srcMgr = nullptr);
  void setSourceMgr(llvm::SourceMgr *srcMgr) { srcMgr_ = srcMgr; }
  llvm::SourceMgr *sourceMgr() const { return srcMgr_; }
  void setHandler(Handler h) { handler_ = std::move(h); }
  void setStream(llvm::raw_ostream *os) { os_ = os; }

  void emit(Diagnostic d);
  void error(const Location &loc, std::string msg) { emit({Severity::Error, loc, std::move(msg), {}}); }
  void warning(const Location &loc, std::string msg) {
    emit({Severity::Warning, loc, std::move(msg), {}});
  }
  void remark(const Location &loc, std::string msg) {
    emit({Severity::Remark, loc, std::move(msg), {}});
  }

  unsigned numErrors() const { return numErrors_; }
  /// Print one diagnostic the default way (used by handlers that re-emit).
  void print(const Diagnostic &d) const;

private:
  llvm::SourceMgr *srcMgr_;
  llvm::raw_ostream *os_ = nullptr; // default: llvm::errs()
  Handler handler_;
  unsigned numErrors_ = 0;
};

} // namespace qlc
