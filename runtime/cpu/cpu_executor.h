// The `cpu` executor (`qlc run --target cpu`): runs a lowered module (pipeline lower-cpu) with
// every cpu.qmatmul through a JIT-compiled fused dequant kernel (codegen/) and every other op
// through the reference implementations. Modules lowered with lower-marlin (marlin.gemm /
// marlin.moe) and lower-npu (npu.weight_quant_batchmatmul / npu.fused_experts) run their
// quantized matmuls through the same kernels (Marlin and NPU layouts). Weights are resolved once (resolvePart: views of the
// mapped checkpoint) and kept; no dequantized copy of a quantized weight is made for a kernel.
// cpu.moe runs routing, grouping, the per-expert kernels and the combine on the JIT too
// (codegen/moe.h). Layouts without a kernel fall back to the reference with a note printed once per
// reason.
#pragma once
#include <map>
#include <atomic>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "llvm/Support/Error.h"
#include "llvm/Support/raw_ostream.h"

#include "codegen/kernel_spec.h"
#include "codegen/moe.h"
#include "ir/ir.h"
#include "runtime/reference_executor.h"
#include "runtime/tensor.h"
#include "runtime/weight_store.h"

namespace qlc::codegen {
class ThreadPool;
class KernelCache;
} // namespace qlc::codegen

namespace qlc {

struct CpuExecutorOptions {
  /// Threads of the kernels' pool, the caller included; 0 = the machine's (the global pool).
  unsigned threads = 0;
  /// Where fallback notes go (null = nowhere; default stderr).
  llvm::raw_ostream *notes = &llvm::errs();
};

class CpuExecutor : public Executor {
public:
  /// `store` may be null if every weight part is inline.
  CpuExecutor(const Module &m, const WeightStore *store, CpuExecutorOptions opts = {});
  ~CpuExecutor();

  /// Runs `func` on `inputs` (same contract as ReferenceExecutor::run).
  llvm::Expected<std::vector<Tensor>> run(llvm::StringRef func,
                                          const std::vector<Tensor> &inputs) override;

  struct Stats {
    unsigned jitOps = 0;       ///< cpu.qmatmul ops run by a JIT kernel
    unsigned referenceOps = 0; ///< ops run by the reference (including fallbacks)
    unsigned fallbacks = 0;    ///< cpu.* ops that had to fall back
  };
  Stats stats() const { return {jitOps_.load(), referenceOps_.load(), fallbacks_.load()}; }

private:
  llvm::Error runOp(const Operation &op, const std::vector<const Tensor *> &ins,
                    std::vector<Tensor> &outs);
  struct Prepared {
    codegen::KernelSpec spec;  ///< one expert's for expert stacks
    int64_t experts = 0;       ///< 0 = a plain weight
    std::vector<PartBytes> parts;
    std::vector<const uint8_t *> ptrs;  ///< spec.partSlots() order (expert 0's for stacks)
    std::vector<int64_t> strides;       ///< bytes from one expert's part to the next's
  };
  /// The kernel-ready weight, or null when its layout has no kernel (the note is printed).
  llvm::Expected<const Prepared *> prepare(const Operation &op, const Weight &w);
  llvm::Error qmatmul(const Operation &op, const Prepared &p, const Tensor &x,
                      std::vector<Tensor> &outs);
  /// The op's expert stacks, prepared; false (with a note) when one has no kernel.
  llvm::Expected<bool> expertWeights(const Operation &op, std::vector<codegen::ExpertWeight> &ws);
  /// cpu.moe through the JIT; false (with a note) when a weight has no kernel.
  llvm::Expected<bool> moe(const Operation &op, const std::vector<const Tensor *> &ins,
                           std::vector<Tensor> &outs);
  /// npu.fused_experts (routing given as topk_weights / topk_ids) through the JIT; false (with a
  /// note) when a weight has no kernel.
  llvm::Expected<bool> fusedExperts(const Operation &op, const std::vector<const Tensor *> &ins,
                                    std::vector<Tensor> &outs);
  llvm::Error checkMarlinActOrder(const Operation &op, const Weight &w, const Prepared &p);
  /// NPU int8 kernels: "" when every antiquant_offset is an integer zero they can take, else
  /// which one is not (the weight then keeps f32 activations).
  llvm::Expected<std::string> npuFractionalOffset(const Weight &w, const codegen::KernelSpec &s);
  void note(const std::string &reason, const std::string &msg);

  const Module &m_;
  const WeightStore *store_;
  CpuExecutorOptions opts_;
  ReferenceExecutor ref_;
  codegen::ThreadPool *pool_ = nullptr;
  std::unique_ptr<codegen::ThreadPool> ownPool_;
  std::map<std::string, std::unique_ptr<Prepared>, std::less<>> prepared_; // null = fallback
  std::mutex preparedMu_, notesMu_;
  std::set<std::string> noted_;
  std::atomic<unsigned> jitOps_{0}, referenceOps_{0}, fallbacks_{0};
};

} // namespace qlc
