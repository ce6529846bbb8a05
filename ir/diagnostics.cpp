#include "ir/diagnostics.h"

#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

namespace qlc {

const char *severityName(Severity s) {
  switch (s) {
  case Severity::Error: return "error";
  case Severity::Warning: return "warning";
  case Severity::Note: return "note";
  case Severity::Remark: return "remark";
  }
  return "error";
}

DiagnosticEngine::DiagnosticEngine(llvm::SourceMgr *srcMgr) : srcMgr_(srcMgr) {}

void DiagnosticEngine::emit(Diagnostic d) {
  if (d.severity == Severity::Error)
    ++numErrors_;
  if (handler_)
    handler_(d);
  else
    print(d);
}

static llvm::SourceMgr::DiagKind toKind(Severity s) {
  switch (s) {
  case Severity::Error: return llvm::SourceMgr::DK_Error;
  case Severity::Warning: return llvm::SourceMgr::DK_Warning;
  case Severity::Note: return llvm::SourceMgr::DK_Note;
  case Severity::Remark: return llvm::SourceMgr::DK_Remark;
  }
  return llvm::SourceMgr::DK_Error;
}

// Finds the SMLoc of a location whose file is one of the SourceMgr's buffers.
static llvm::SMLoc findLoc(llvm::SourceMgr *sm, const Location &loc) {
  if (!sm || !loc.isKnown())
    return {};
  for (unsigned i = 1; i <= sm->getNumBuffers(); ++i) {
    if (sm->getMemoryBuffer(i)->getBufferIdentifier() != loc.file)
      continue;
    return sm->FindLocForLineAndColumn(i, loc.line, loc.col);
  }
  return {};
}

void DiagnosticEngine::print(const Diagnostic &d) const {
  llvm::raw_ostream &os = os_ ? *os_ : llvm::errs();
  auto printOne = [&](const Diagnostic &x) {
    llvm::SMLoc sl = findLoc(srcMgr_, x.loc);
    if (sl.isValid()) {
      srcMgr_->PrintMessage(os, sl, toKind(x.severity), x.message);
      return;
    }
    if (x.loc.isKnown())
      os << x.loc.str() << ": ";
    os << severityName(x.severity) << ": " << x.message << "\n";
  };
  printOne(d);
  for (const Diagnostic &n : d.notes)
    printOne(n);
}

} // namespace qlc
