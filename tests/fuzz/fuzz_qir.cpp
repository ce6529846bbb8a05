// Fuzz target: the textual IR parser and the verifier (ir/parser.cpp, ir/verifier.cpp). A module
// that parses and verifies is printed and parsed again: the printer's output must parse and
// verify (print(parse(print(m))) == print(m), ir/printer.h); anything else is a finding.
// The module's checkpoint is never opened (a fuzzed path could name any file).
#include <cstdio>

#include "llvm/Support/SourceMgr.h"

#include "fuzz_common.h"
#include "ir/parser.h"
#include "ir/printer.h"

using namespace qlc;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  schemes::registerAllSchemes(); // the weight types of every scheme
  llvm::StringRef text(reinterpret_cast<const char *>(data), size);
  llvm::SourceMgr sm;
  DiagnosticEngine diag(&sm);
  fuzz::silence(diag);
  std::unique_ptr<Module> m = parseModuleString(text, "fuzz.qir", sm, diag);
  if (!m || llvm::failed(verifyModule(*m, diag)))
    return 0;
  std::string printed = printModuleToString(*m);
  llvm::SourceMgr sm2;
  DiagnosticEngine diag2(&sm2);
  std::string errors;
  diag2.setHandler([&](const Diagnostic &d) { errors += d.message + "\n"; });
  std::unique_ptr<Module> m2 = parseModuleString(printed, "printed.qir", sm2, diag2);
  if (!m2 || llvm::failed(verifyModule(*m2, diag2))) {
    std::fprintf(stderr, "printed module does not parse/verify:\n%s\n--- printed:\n%s\n",
                 errors.c_str(), printed.c_str());
    std::abort();
  }
  if (printModuleToString(*m2) != printed) {
    std::fprintf(stderr, "print(parse(print(m))) != print(m):\n%s\n--- reprinted:\n%s\n",
                 printed.c_str(), printModuleToString(*m2).c_str());
    std::abort();
  }
  return 0;
}
