// qlc's public C++ runtime API (docs/runtime.md):
//
//   qlc::Runtime rt(qlc::Target::cpu());                    // or Target::npu_emu(), reference()
//   qlc::Expected<qlc::Program> p = rt.compile_checkpoint("model_dir");
//   if (!p) { std::cerr << p.error().str() << "\n"; return 1; }
//   qlc::Expected<qlc::HostTensor> y = p->call("model.layers.0.mlp", {x});  // thread-safe
//   p->save("prog");  ...  auto q = rt.load("prog");        // no import, no lowering
//
// Self-contained: includes only the standard library and the other qlc/ headers, so an installed
// consumer needs nothing but `find_package(qlc)` and `qlc::qlc`.
#pragma once
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "qlc/expected.h"
#include "qlc/host_tensor.h"

namespace qlc {

/// The version of the library ("0.1.0"), written into saved programs.
const char *version();

/// Where a program runs.
class Target {
public:
  enum class Kind : uint8_t { reference, cpu, npu_emu };

  /// The host CPU: pipeline lower-cpu, JIT-compiled fused dequant kernels. `threads` = kernel
  /// threads (0 = all of the machine's, shared by every cpu program).
  static Target cpu(unsigned threads = 0);
  /// The NPU emulator: pipeline lower-npu, Ascend operator semantics on the Ascend layouts, a
  /// device memory of `device_memory_bytes` (weights must fit, else compile/load fails).
  static Target npu_emu(uint64_t device_memory_bytes = uint64_t(16) << 30);
  /// The scalar reference executor on the module as imported (no lowering): the oracle.
  static Target reference();
  /// "cpu", "npu-emu" or "reference" (as the driver spells them); an Error names the choices.
  static Expected<Target> parse(const std::string &name);

  Kind kind() const { return kind_; }
  const char *name() const;
  unsigned threads() const { return threads_; }
  uint64_t device_memory_bytes() const { return device_memory_; }
  /// The pipeline a program for this target is lowered with by default ("" for reference).
  const char *default_pipeline() const;

private:
  Target(Kind k) : kind_(k) {}
  Kind kind_;
  unsigned threads_ = 0;
  uint64_t device_memory_ = uint64_t(16) << 30;
};

/// One step of long work, for progress bars. `stage` is "import", "lower" (one unit per pass),
/// "weights" (resolving and checking every part of the lowered weights), "load" (a saved
/// program's IR) or "save" (writing the weights). `done` of `total` units; `item` names the
/// current unit (a pass, a weight).
struct Progress {
  std::string stage;
  uint64_t done = 0;
  uint64_t total = 0;
  std::string item;
};
using ProgressCallback = std::function<void(const Progress &)>;

struct CompileOptions {
  /// A pass pipeline (`qlc-opt -passes=` syntax) or "default" / "" = the target's
  /// (Target::default_pipeline()).
  std::string pipeline = "default";
  /// Verify the IR after every pass.
  bool verify_each = true;
  /// Called on import, lowering and weight steps (from the calling thread). Null = silent.
  ProgressCallback progress;
  /// cpu: notes about layouts that have no JIT kernel and fall back to the reference (once per
  /// reason). Null = nowhere. Must outlive the program.
  std::ostream *notes = nullptr;
  /// npu-emu: one line per device op (the driver's --trace). Null = no trace. Must outlive the
  /// program; concurrent calls interleave their lines.
  std::ostream *trace = nullptr;
};

/// A function's signature: argument and result types (dims -1 = dynamic, any size).
struct TensorSpec {
  DataType dtype = DataType::f32;
  std::vector<int64_t> shape;
  std::string str() const; // "tensor<?x64xf32>"
};
struct FunctionInfo {
  std::string name;
  std::vector<TensorSpec> arguments;
  std::vector<TensorSpec> results;
};

/// A compiled module: its lowered IR, its weights and an executor for its target. Calls are
/// thread-safe: any number of threads may call() one program at once. Movable, not copyable.
class Program {
public:
  Program(Program &&) noexcept;
  Program &operator=(Program &&) noexcept;
  ~Program();

  /// Runs `function` on `inputs` (one per argument, element types equal to the arguments' or
  /// convertible floats; dims compatible) and returns its first result.
  Expected<HostTensor> call(const std::string &function, const std::vector<HostTensor> &inputs) const;
  /// Same, every result.
  Expected<std::vector<HostTensor>> call_all(const std::string &function,
                                             const std::vector<HostTensor> &inputs) const;

  const Target &target() const;
  /// The pipeline the module was lowered with ("" = none).
  const std::string &pipeline() const;
  /// The model path the program was compiled from (a checkpoint or .qir; "" if from text).
  const std::string &source() const;
  std::vector<FunctionInfo> functions() const;
  /// The lowered IR as text (inline weight bytes elided).
  std::string ir() const;
  /// Device counters: npu-emu h2d_bytes, d2h_bytes, weight_bytes, peak_device_bytes, ops; cpu
  /// jit_ops, reference_ops, fallbacks. Empty for reference.
  std::vector<std::pair<std::string, uint64_t>> counters() const;

  /// Writes `dir`/manifest.json, program.qir (the lowered IR) and weights.safetensors (every part
  /// of every weight, rewritten layouts included). Creates `dir`; overwrites those three files.
  Expected<void> save(const std::string &dir, const ProgressCallback &progress = {}) const;
  /// Reads a saved program and creates its executor for the manifest's target (no import, no
  /// lowering). Errors name the file (corrupt manifest, missing weights, invalid IR...).
  static Expected<Program> load(const std::string &dir, const CompileOptions &options = {});

  /// The implementation (opaque outside the library; for in-tree tools).
  struct Impl;
  explicit Program(std::unique_ptr<Impl> impl);
  const Impl &impl() const { return *impl_; }

private:
  std::unique_ptr<Impl> impl_;
};

/// Compiles models for one target.
class Runtime {
public:
  explicit Runtime(Target target);
  const Target &target() const { return target_; }

  /// A checkpoint: a model folder or .safetensors (AWQ, GPTQ, compressed-tensors, W8A8, dense),
  /// a .gguf file, or a folder written by `qlc export`. Imported, verified and lowered.
  Expected<Program> compile_checkpoint(const std::string &path, const CompileOptions &options = {}) const;
  /// A .qir module file (its `checkpoint` attribute, relative to the file, names its weights).
  Expected<Program> compile_module(const std::string &qir_path, const CompileOptions &options = {}) const;
  /// Module text; `name` is used in diagnostics; `checkpoint_base` is the folder a relative
  /// `checkpoint` attribute is resolved against ("" = the current folder).
  Expected<Program> compile_module_text(const std::string &text, const std::string &name = "<text>",
                                        const CompileOptions &options = {},
                                        const std::string &checkpoint_base = "") const;
  /// Any model path: a saved program folder (has manifest.json) is loaded, a .qir compiled as a
  /// module, anything else as a checkpoint.
  Expected<Program> compile(const std::string &path, const CompileOptions &options = {}) const;
  /// A saved program; an Error if it was compiled for another target kind. The device options
  /// (threads, device memory) are this runtime's.
  Expected<Program> load(const std::string &dir, const CompileOptions &options = {}) const;

private:
  Target target_;
};

} // namespace qlc
