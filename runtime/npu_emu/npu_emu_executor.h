// The `npu-emu` device: executes a module lowered by `lower-npu` with the Ascend operators'
// semantics (FORMATS.md §5.1, §5.3, §5.4) on the exact layouts npu-layout-rewrite produced, with a
// device model: a separate device memory of fixed capacity, host-to-device copies of weights and
// activations accounted, out-of-memory reported naming the tensor, and an optional op trace.
// Needs no JIT: it links the runtime, not codegen/.
#pragma once
#include <cstdint>
#include <memory>

#include "llvm/Support/Error.h"
#include "llvm/Support/raw_ostream.h"

#include "runtime/executor.h"
#include "runtime/weight_store.h"

namespace qlc {

struct NpuEmuOptions {
  /// Device memory capacity in bytes (`--npu-mem`).
  uint64_t deviceMemoryBytes = uint64_t(16) << 30;
  /// Where the op trace goes (`--trace`); null = no trace.
  llvm::raw_ostream *trace = nullptr;
};

class NpuEmuExecutor : public Executor {
public:
  /// Uploads every weight the module's functions use to device memory (the H2D copies are counted);
  /// fails naming the weight when it does not fit, or when an op is given a layout it cannot take.
  /// `m` must outlive the executor; `store` is read only here (the device keeps its own copies).
  static llvm::Expected<std::unique_ptr<NpuEmuExecutor>>
  create(const Module &m, const WeightStore *store, NpuEmuOptions opts = {});
  ~NpuEmuExecutor() override;

  /// Copies `inputs` to the device, runs `func`'s ops there (each value freed after its last
  /// reader) and copies the results back. Safe to call from several threads at once. Running out
  /// of device memory is an error naming the value (`%y (result of 'op' at file:line:col)`), the
  /// bytes requested, the bytes in use and the capacity. See docs/npu-emu.md.
  llvm::Expected<std::vector<Tensor>> run(llvm::StringRef func,
                                          const std::vector<Tensor> &inputs) override;

  struct Stats {
    uint64_t h2dBytes = 0;        ///< host-to-device bytes (weights and activations)
    uint64_t d2hBytes = 0;        ///< device-to-host bytes (results)
    uint64_t weightBytes = 0;     ///< device bytes held by weights
    uint64_t peakDeviceBytes = 0; ///< high-water mark of device memory in use
    uint64_t ops = 0;             ///< device ops executed
  };
  /// Totals since create() (weights included); peakDeviceBytes is the device's high-water mark.
  Stats stats() const;

private:
  NpuEmuExecutor();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

} // namespace qlc
