// Internal to runtime/npu_emu: the device's state (memory, uploaded weights, stats) shared by the
// executor and its op handlers, and DeviceRun, one call of run(). The run loop, memory and trace
// are in npu_emu_executor.cpp; the op handlers, which turn IR operands into kernel calls, in
// npu_emu_device_ops.cpp.
#pragma once
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "ir/ir.h"
#include "runtime/npu_emu/device_memory.h"
#include "runtime/npu_emu/npu_emu_executor.h"
#include "runtime/reference_executor.h"
#include "runtime/tensor.h"

namespace qlc::npu_emu {

/// One weight part in device memory: the bytes copied from the host at create() time.
struct DevicePart {
  TensorType type;
  std::vector<uint8_t> bytes;
  DeviceAllocation alloc;
};

/// A weight uploaded to the device: its parts by name and their total bytes (read-only after
/// create(), so concurrent calls share it without a lock).
struct DeviceWeight {
  const Weight *weight = nullptr;
  std::map<std::string, DevicePart, std::less<>> parts;
  uint64_t bytes = 0;

  const DevicePart *part(llvm::StringRef name) const {
    auto it = parts.find(name);
    return it == parts.end() ? nullptr : &it->second;
  }
  /// The one part of a dense weight.
  const DevicePart &dense() const { return parts.begin()->second; }
};

/// A tensor in device memory: its bytes and their reservation.
struct DeviceTensor {
  Tensor data;
  DeviceAllocation alloc;
};

/// Per function: where each value is read for the last time (so its memory is freed right after),
/// and the names the printer gives values (for messages and the trace).
struct FunctionPlan {
  std::unordered_map<const Value *, size_t> lastUse; ///< index of the op, `return` included
  std::unordered_map<const Value *, std::string> names;
};

/// What one op (or copy) moved and computed, for the trace and the stats.
struct OpCost {
  uint64_t h2d = 0, d2h = 0, read = 0, written = 0, flops = 0;
  OpCost &operator+=(const OpCost &o) {
    h2d += o.h2d, d2h += o.d2h, read += o.read, written += o.written, flops += o.flops;
    return *this;
  }
};

inline int64_t rowsOf(const std::vector<int64_t> &shape) {
  int64_t r = 1;
  for (size_t i = 0; i + 1 < shape.size(); ++i)
    r *= shape[i];
  return r;
}

inline int64_t elementsOf(const std::vector<int64_t> &shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

/// The device: its memory, the uploaded weights, the stats.
struct DeviceState {
  DeviceState(const Module &mod, NpuEmuOptions o)
      : m(mod), opts(o), mem(o.deviceMemoryBytes), ref(mod, nullptr) {}

  const Module &m;
  NpuEmuOptions opts;
  DeviceMemory mem;
  /// Runs the core elementwise ops through their registered reference implementations; it is
  /// given no weight store: those ops read no weights.
  ReferenceExecutor ref;
  std::map<std::string, DeviceWeight, std::less<>> weights; ///< read-only after create()
  std::unordered_map<const Function *, FunctionPlan> plans; ///< read-only after create()
  mutable std::mutex statsMu;
  NpuEmuExecutor::Stats stats;
  std::mutex traceMu;

  void account(const OpCost &c, uint64_t ops) {
    std::lock_guard<std::mutex> lock(statsMu);
    stats.h2dBytes += c.h2d;
    stats.d2hBytes += c.d2h;
    stats.ops += ops;
  }
};

/// One call of run(): the function's values live in device memory from the op that makes them to
/// their last reader. Owns nothing shared but the reservations it takes.
class DeviceRun {
public:
  DeviceRun(DeviceState &d, const Function &f, const FunctionPlan &plan)
      : d_(d), f_(f), plan_(plan) {}

  llvm::Expected<std::vector<Tensor>> run(const std::vector<Tensor> &inputs);
  /// Adds the call's copies and ops to the stats and writes its trace with the summary line.
  void finish(bool ok);

private:
  using Outs = std::vector<DeviceTensor>;
  using Ins = std::vector<const Tensor *>;

  llvm::Error runOp(const Operation &op, Outs &outs, OpCost &cost);
  /// Reserves result #i of `op` with a concrete shape, before the kernel writes it.
  llvm::Expected<DeviceTensor> result(const Operation &op, unsigned i,
                                      const std::vector<int64_t> &shape);
  llvm::Expected<DeviceAllocation> workspace(const Operation &op, uint64_t bytes);
  const DeviceWeight &weight(const Operation &op, unsigned i, OpCost &cost) {
    const DeviceWeight &w = d_.weights.at(op.symbols()[i]);
    cost.read += w.bytes;
    return w;
  }
  void trace(llvm::StringRef what, const Location &loc, const std::string &value, const OpCost &c);

  llvm::Error weightQuantBatchMatmul(const Operation &op, const Ins &in, Outs &outs, OpCost &c);
  llvm::Error gatingTopK(const Operation &op, const Ins &in, Outs &outs, OpCost &c);
  llvm::Error fusedExperts(const Operation &op, const Ins &in, Outs &outs, OpCost &c);
  llvm::Error dynamicQuant(const Operation &op, const Ins &in, Outs &outs, OpCost &c);
  llvm::Error quantMatmul(const Operation &op, const Ins &in, Outs &outs, OpCost &c);
  llvm::Error linear(const Operation &op, const Ins &in, Outs &outs, OpCost &c);
  llvm::Error moe(const Operation &op, const Ins &in, Outs &outs, OpCost &c);
  llvm::Error embedding(const Operation &op, const Ins &in, Outs &outs, OpCost &c);
  llvm::Error rmsNorm(const Operation &op, const Ins &in, Outs &outs, OpCost &c);
  llvm::Error referenceOp(const Operation &op, const Ins &in, Outs &outs, OpCost &c);

  DeviceState &d_;
  const Function &f_;
  const FunctionPlan &plan_;
  std::unordered_map<const Value *, DeviceTensor> env_;
  std::string trace_;
  OpCost total_;
  uint64_t ops_ = 0;
};

} // namespace qlc::npu_emu
