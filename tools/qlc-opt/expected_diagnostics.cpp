#include "expected_diagnostics.h"

#include "llvm/ADT/SmallVector.h"
#include "llvm/Support/Regex.h"

namespace qlc {

ExpectedDiagnostics::ExpectedDiagnostics(llvm::StringRef text, std::string file,
                                         DiagnosticEngine &diag)
    : file_(std::move(file)) {
  llvm::Regex re("expected-(error|warning|note|remark)[ ]*(@([+-][0-9]+|above|below))?[ ]*"
                 "\\{\\{(.*)\\}\\}");
  llvm::SmallVector<llvm::StringRef> lines;
  text.split(lines, '\n');
  for (unsigned i = 0; i < lines.size(); ++i) {
    llvm::StringRef line = lines[i];
    size_t at = line.find("expected-");
    if (at == llvm::StringRef::npos)
      continue;
    llvm::StringRef rest = line.substr(at);
    // Only recognise directives of the four kinds (so prose that says "expected-" is left alone).
    if (!rest.starts_with("expected-error") && !rest.starts_with("expected-warning") &&
        !rest.starts_with("expected-note") && !rest.starts_with("expected-remark"))
      continue;
    llvm::SmallVector<llvm::StringRef> m;
    Location loc{file_, i + 1, unsigned(at + 1)};
    if (!re.match(rest, &m)) {
      diag.error(loc, "malformed expectation: write expected-<kind> [@+N|@-N|@above|@below] {{text}}");
      malformed_ = true;
      continue;
    }
    Expected e;
    e.severity = m[1] == "error"     ? Severity::Error
                 : m[1] == "warning" ? Severity::Warning
                 : m[1] == "note"    ? Severity::Note
                                     : Severity::Remark;
    long target = long(i + 1);
    if (!m[3].empty()) {
      if (m[3] == "above")
        target -= 1;
      else if (m[3] == "below")
        target += 1;
      else {
        long off = 0;
        m[3].drop_front().getAsInteger(10, off);
        target += m[3][0] == '-' ? -off : off;
      }
    }
    e.line = unsigned(std::max(1L, target));
    e.commentLine = i + 1;
    e.commentCol = unsigned(at + 1);
    e.text = m[4].str();
    expected_.push_back(std::move(e));
  }
}

void ExpectedDiagnostics::record(const Diagnostic &d) {
  seen_.push_back(d);
  for (const Diagnostic &n : d.notes)
    seen_.push_back(n);
}

bool ExpectedDiagnostics::check(DiagnosticEngine &diag) {
  bool ok = !malformed_;
  for (const Diagnostic &d : seen_) {
    bool found = false;
    for (Expected &e : expected_) {
      if (e.matched || e.severity != d.severity || d.loc.file != file_ || d.loc.line != e.line ||
          d.message.find(e.text) == std::string::npos)
        continue;
      e.matched = found = true;
      break;
    }
    if (!found) {
      ok = false;
      Diagnostic u = d;
      u.severity = Severity::Error;
      u.message = std::string("unexpected ") + severityName(d.severity) + ": " + d.message;
      diag.print(u);
    }
  }
  for (const Expected &e : expected_)
    if (!e.matched) {
      ok = false;
      diag.print({Severity::Error, Location{file_, e.commentLine, e.commentCol},
                  std::string("expected ") + severityName(e.severity) + " \"" + e.text +
                      "\" was not produced (on line " + std::to_string(e.line) + ")",
                  {}});
    }
  return ok;
}

} // namespace qlc
