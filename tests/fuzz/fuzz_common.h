// Shared by the libFuzzer targets of tests/fuzz/ (docs/security.md, "Fuzzing").
//
// Every target defines LLVMFuzzerTestOneInput. Built with -DQLC_FUZZ=ON (clang,
// -fsanitize=fuzzer,address,undefined) they are libFuzzer binaries; in every other build they are
// linked with replay_main.cpp and run their seed corpus (tests/fuzz/corpus/<target>/) as a ctest
// test, so every seed and every past finding is a regression test of the plain and ASan builds.
//
// The contract checked: whatever the bytes, the readers return an error or a value, never crash,
// hang, leak or read outside what they were given (ASan/UBSan make any of these a finding).
#pragma once
#include <cstdint>
#include <cstdlib>
#include <string>
#include <unistd.h>

#include "llvm/ADT/SmallString.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include "import/importer.h"
#include "ir/diagnostics.h"
#include "ir/ir.h"
#include "ir/verifier.h"
#include "runtime/weight_store.h"
#include "schemes/all_schemes.h"

namespace qlc::fuzz {

/// A scratch folder of this process (tmpfs when there is one), removed at exit.
inline const std::string &scratchDir() {
  static const std::string dir = [] {
    const char *base = std::getenv("QLC_FUZZ_TMPDIR");
    if (!base)
      base = llvm::sys::fs::is_directory("/dev/shm") ? "/dev/shm" : "/tmp";
    std::string d = std::string(base) + "/qlc-fuzz-" + std::to_string(getpid());
    llvm::sys::fs::create_directories(d);
    static struct Cleanup {
      std::string d;
      ~Cleanup() { llvm::sys::fs::remove_directories(d); }
    } cleanup{d};
    return d;
  }();
  return dir;
}

inline std::string scratchPath(llvm::StringRef name) {
  llvm::SmallString<256> p(scratchDir());
  llvm::sys::path::append(p, name);
  return std::string(p);
}

/// Writes `size` bytes to `path` (replacing it). Aborts on I/O failure: that is the harness's
/// problem, not a finding about qlc.
inline void writeFile(const std::string &path, const void *data, size_t size) {
  std::error_code ec;
  llvm::raw_fd_ostream os(path, ec, llvm::sys::fs::OF_None);
  if (ec) {
    llvm::errs() << "fuzz harness: cannot write " << path << ": " << ec.message() << "\n";
    std::abort();
  }
  os.write(static_cast<const char *>(data), size);
}

/// Diagnostics are expected (most inputs are invalid): drop them instead of printing.
inline void silence(DiagnosticEngine &diag) {
  diag.setHandler([](const Diagnostic &) {});
}

/// Drops an expected error (an error is a correct answer to a bad input).
template <class T> bool ok(llvm::Expected<T> &v) {
  if (v)
    return true;
  llvm::consumeError(v.takeError());
  return false;
}

/// What `qlc inspect` + `qlc dequant` of every weight do to a checkpoint: import, verify, open the
/// weight store, and reference-dequantize every weight (which reads every byte of every part).
inline void importVerifyDequant(const std::string &path) {
  schemes::registerAllSchemes();
  auto m = importCheckpoint(path);
  if (!ok(m))
    return;
  DiagnosticEngine diag;
  silence(diag);
  if (llvm::failed(verifyModule(**m, diag)))
    return;
  auto store = WeightStore::openForModule(**m, "");
  if (!ok(store))
    return;
  for (const auto &w : (*m)->weights()) {
    auto d = dequantizeWeight(*w, store->get());
    if (ok(d)) {
      // Touch the result so the dequantizer's writes cannot be optimised away.
      volatile float sink = d->empty() ? 0.f : (*d)[d->size() / 2];
      (void)sink;
    }
  }
}

} // namespace qlc::fuzz
