// Optimisation (new pass manager, the kernel pipeline, host CPU and features) and ORC LLJIT
// compilation of kernel specialisations, with a cache keyed by KernelSpec::key(): each
// specialisation is compiled once per process, however many layers use it.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "llvm/Support/Error.h"

#include "codegen/kernel_spec.h"

namespace llvm::orc {
class LLJIT;
}

namespace qlc::codegen {

/// void k(const float *x, int64 M, const uint8_t *const *parts, float *y, int64 n_begin,
///        int64 n_end, float *scratch)   (codegen/kernel_emitter.h)
using KernelFn = void (*)(const float *, int64_t, const uint8_t *const *, float *, int64_t,
                          int64_t, float *);

struct CompiledKernel {
  KernelSpec spec;
  KernelFn fn = nullptr;
  double compileMs = 0;    ///< IR generation + IR passes + machine code, wall time
  double compileCpuMs = 0; ///< the same, CPU time of the compiling thread (robust to load)
};

class KernelCache {
public:
  KernelCache();
  ~KernelCache();
  /// The process-wide cache (what the cpu executor uses).
  static KernelCache &global();

  /// The compiled kernel of `spec`, compiling it on first request. Thread-safe.
  llvm::Expected<const CompiledKernel *> get(const KernelSpec &spec);
  /// Number of kernels compiled so far (cache misses).
  unsigned compilations() const;
  /// Sum of compile times (ms) of all compiled kernels.
  double totalCompileMs() const;
  /// (key, compile ms) of every kernel compiled so far, by key (wall, or the thread's CPU time).
  std::vector<std::pair<std::string, double>> compileTimes(bool cpu = false) const;
  /// The specs of the kernels compiled so far, in compileTimes' order.
  std::vector<KernelSpec> specs() const;

private:
  mutable std::mutex mu_;
  std::unique_ptr<llvm::orc::LLJIT> jit_;
  std::map<std::string, std::unique_ptr<CompiledKernel>> kernels_;
};

/// The optimised LLVM IR (textual) of one kernel, as the JIT compiles it.
llvm::Expected<std::string> kernelLLVMIR(const KernelSpec &spec);
/// The host assembly of one kernel.
llvm::Expected<std::string> kernelAssembly(const KernelSpec &spec);

} // namespace qlc::codegen
