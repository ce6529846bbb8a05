// The public runtime API: targets, compiling a checkpoint or module into a Program (import,
// verify, lower, check weights, create the target's executor) and calling it.
#include <mutex>

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include "import/importer.h"
#include "ir/diagnostics.h"
#include "ir/op_registry.h"
#include "ir/parser.h"
#include "ir/printer.h"
#include "ir/verifier.h"
#include "passes/pass_manager.h"
#include "qlc/runtime.h"
#include "runtime/api/api_internal.h"
#include "runtime/cpu/cpu_executor.h"
#include "runtime/reference_executor.h"
#include "schemes/all_schemes.h"
#ifdef QLC_HAVE_NPU_EMU
#include "runtime/npu_emu/npu_emu_executor.h"
#endif

namespace qlc {

const char *version() { return QLC_VERSION_STRING; }

//===----------------------------------------------------------------------===//
// Target
//===----------------------------------------------------------------------===//

Target Target::cpu(unsigned threads) {
  Target t(Kind::cpu);
  t.threads_ = threads;
  return t;
}

Target Target::npu_emu(uint64_t device_memory_bytes) {
  Target t(Kind::npu_emu);
  t.device_memory_ = device_memory_bytes;
  return t;
}

Target Target::reference() { return Target(Kind::reference); }

Expected<Target> Target::parse(const std::string &name) {
  if (name == "cpu")
    return cpu();
  if (name == "npu-emu")
    return npu_emu();
  if (name == "reference")
    return reference();
  return Error("unknown target '" + name + "' (targets: reference, cpu, npu-emu)");
}

const char *Target::name() const {
  switch (kind_) {
  case Kind::reference: return "reference";
  case Kind::cpu: return "cpu";
  case Kind::npu_emu: return "npu-emu";
  }
  return "?";
}

const char *Target::default_pipeline() const {
  switch (kind_) {
  case Kind::reference: return "";
  case Kind::cpu: return "lower-cpu";
  case Kind::npu_emu: return "lower-npu";
  }
  return "";
}

std::string TensorSpec::str() const {
  std::string s = "tensor<";
  for (int64_t d : shape)
    s += (d < 0 ? std::string("?") : std::to_string(d)) + "x";
  return s + data_type_name(dtype) + ">";
}

namespace api {

void ensureRegistered() {
  static std::once_flag once;
  std::call_once(once, [] {
    registerCoreOps();
    registerGenericPasses();
    schemes::registerAllSchemes();
  });
}

Error makeError(std::string message, std::string diagnostics) {
  return Error(std::move(message), std::move(diagnostics));
}

Error toError(llvm::Error e, std::string diagnostics) {
  return Error(llvm::toString(std::move(e)), std::move(diagnostics));
}

const Module &programModule(const Program &p) { return *p.impl().module; }

/// A DiagnosticEngine printing into a string (the Error's diagnostics).
struct CollectedDiagnostics {
  std::string text;
  llvm::raw_string_ostream os{text};
  DiagnosticEngine diag;
  explicit CollectedDiagnostics(llvm::SourceMgr *sm) : diag(sm) { diag.setStream(&os); }
  std::string take() {
    os.flush();
    return text;
  }
};

static void report(const ProgressCallback &cb, const char *stage, uint64_t done, uint64_t total,
                   std::string item) {
  if (cb)
    cb(Progress{stage, done, total, std::move(item)});
}

Expected<void> createExecutor(Program::Impl &impl, const CompileOptions &options) {
  // Unbuffered: a note or trace line appears when it is written, in order with the caller's output.
  if (options.notes) {
    impl.notes = std::make_unique<llvm::raw_os_ostream>(*options.notes);
    impl.notes->SetUnbuffered();
  }
  if (options.trace) {
    impl.trace = std::make_unique<llvm::raw_os_ostream>(*options.trace);
    impl.trace->SetUnbuffered();
  }
  switch (impl.target.kind()) {
  case Target::Kind::reference:
    impl.executor = std::make_unique<ReferenceExecutor>(*impl.module, impl.store.get());
    return {};
  case Target::Kind::cpu: {
    CpuExecutorOptions o;
    o.threads = impl.target.threads();
    o.notes = impl.notes.get();
    auto ex = std::make_unique<CpuExecutor>(*impl.module, impl.store.get(), o);
    impl.cpu = ex.get();
    impl.executor = std::move(ex);
    return {};
  }
  case Target::Kind::npu_emu: {
#ifdef QLC_HAVE_NPU_EMU
    NpuEmuOptions o;
    o.deviceMemoryBytes = impl.target.device_memory_bytes();
    o.trace = impl.trace.get();
    auto ex = NpuEmuExecutor::create(*impl.module, impl.store.get(), o);
    if (!ex)
      return toError(ex.takeError());
    impl.npu = ex->get();
    impl.executor = std::move(*ex);
    return {};
#else
    return makeError("target npu-emu is not part of this build (runtime/npu_emu was not built)");
#endif
  }
  }
  return makeError("unknown target");
}

/// Resolves every part of every weight once (each `from` tensor exists with the declared dtype
/// and shape, inline data has the declared size), so that a bad checkpoint fails the compile
/// naming the tensor rather than a later call.
static Expected<void> checkWeights(const Module &m, const WeightStore *store,
                                   const ProgressCallback &progress) {
  uint64_t n = m.weights().size(), i = 0;
  for (const auto &w : m.weights()) {
    report(progress, "weights", i++, n, w->name());
    for (const WeightPart &p : w->parts()) {
      auto bytes = resolvePart(*w, p, store);
      if (!bytes)
        return toError(bytes.takeError());
    }
  }
  report(progress, "weights", n, n, "");
  return {};
}

Expected<Program> buildProgram(const Target &target, std::unique_ptr<llvm::SourceMgr> sm,
                               std::unique_ptr<Module> m, const std::string &moduleFile,
                               const std::string &source, const std::string &pipeline,
                               const CompileOptions &options, bool lower) {
  auto impl = std::make_unique<Program::Impl>();
  impl->target = target;
  impl->pipeline = pipeline;
  impl->source = source;
  impl->sm = std::move(sm);
  impl->module = std::move(m);
  auto store = WeightStore::openForModule(*impl->module, moduleFile);
  if (!store)
    return toError(store.takeError());
  impl->store = std::move(*store);
  if (lower && !pipeline.empty()) {
    CollectedDiagnostics cd(impl->sm.get());
    const WeightStore *st = impl->store.get();
    PassContext ctx{cd.diag, [st]() -> llvm::Expected<const WeightStore *> { return st; }};
    PassManagerOptions pmo;
    pmo.verifyEach = options.verify_each;
    if (options.progress)
      pmo.progress = [&](size_t done, size_t total, const std::string &pass) {
        report(options.progress, "lower", done, total, pass);
      };
    PassManager pm(ctx, pmo);
    if (std::string e = pm.addPipeline(pipeline); !e.empty())
      return makeError("pipeline '" + pipeline + "': " + e);
    std::string log;
    llvm::raw_string_ostream logOs(log);
    if (llvm::failed(pm.run(*impl->module, &logOs)))
      return makeError((source.empty() ? std::string("<module>") : source) + ": lowering for " +
                           target.name() + " with '" + pipeline + "' failed",
                       cd.take());
  }
  if (auto ok = checkWeights(*impl->module, impl->store.get(), options.progress); !ok)
    return ok.error();
  if (auto ok = createExecutor(*impl, options); !ok)
    return ok.error();
  return Program(std::move(impl));
}

/// The pipeline `options` asks for on `target`.
static std::string resolvePipeline(const Target &target, const CompileOptions &options) {
  if (options.pipeline.empty() || options.pipeline == "default")
    return target.default_pipeline();
  return options.pipeline;
}

} // namespace api

//===----------------------------------------------------------------------===//
// Runtime
//===----------------------------------------------------------------------===//

Runtime::Runtime(Target target) : target_(target) { api::ensureRegistered(); }

Expected<Program> Runtime::compile_checkpoint(const std::string &path,
                                              const CompileOptions &options) const {
  using namespace api;
  report(options.progress, "import", 0, 2, "read " + path);
  auto m = importCheckpoint(path);
  if (!m)
    return toError(m.takeError());
  report(options.progress, "import", 1, 2, "verify");
  auto sm = std::make_unique<llvm::SourceMgr>();
  CollectedDiagnostics cd(sm.get());
  if (llvm::failed(verifyModule(**m, cd.diag)))
    return makeError(path + ": the imported module does not verify", cd.take());
  report(options.progress, "import", 2, 2, "");
  llvm::SmallString<256> abs(path);
  llvm::sys::fs::make_absolute(abs);
  return buildProgram(target_, std::move(sm), std::move(*m), "", std::string(abs),
                      resolvePipeline(target_, options), options);
}

namespace api {
/// Parses, verifies and builds module text; `moduleFile` resolves a relative checkpoint.
static Expected<Program> compileText(const Target &target, const std::string &text,
                                     const std::string &name, const CompileOptions &options,
                                     const std::string &moduleFile, const std::string &source) {
  auto sm = std::make_unique<llvm::SourceMgr>();
  CollectedDiagnostics cd(sm.get());
  report(options.progress, "import", 0, 1, "parse " + name);
  std::unique_ptr<Module> m = parseModuleString(text, name, *sm, cd.diag);
  if (!m || llvm::failed(verifyModule(*m, cd.diag)))
    return makeError(name + ": invalid module", cd.take());
  report(options.progress, "import", 1, 1, "");
  return buildProgram(target, std::move(sm), std::move(m), moduleFile, source,
                      resolvePipeline(target, options), options);
}
} // namespace api

Expected<Program> Runtime::compile_module_text(const std::string &text, const std::string &name,
                                               const CompileOptions &options,
                                               const std::string &checkpoint_base) const {
  // openForModule resolves a relative checkpoint against the folder of the file it is given.
  std::string moduleFile;
  if (!checkpoint_base.empty()) {
    llvm::SmallString<256> f(checkpoint_base);
    llvm::sys::path::append(f, "module.qir");
    moduleFile = std::string(f);
  }
  return api::compileText(target_, text, name, options, moduleFile, "");
}

Expected<Program> Runtime::compile_module(const std::string &qir_path,
                                          const CompileOptions &options) const {
  auto buf = llvm::MemoryBuffer::getFile(qir_path, /*IsText=*/true);
  if (!buf)
    return Error(qir_path + ": cannot open: " + buf.getError().message());
  llvm::SmallString<256> abs(qir_path);
  llvm::sys::fs::make_absolute(abs);
  return api::compileText(target_, (*buf)->getBuffer().str(), qir_path, options, qir_path,
                          std::string(abs));
}

Expected<Program> Runtime::compile(const std::string &path, const CompileOptions &options) const {
  llvm::SmallString<256> manifest(path);
  llvm::sys::path::append(manifest, "manifest.json");
  if (llvm::sys::fs::is_directory(path) && llvm::sys::fs::exists(manifest))
    return load(path, options);
  if (llvm::StringRef(path).ends_with(".qir"))
    return compile_module(path, options);
  return compile_checkpoint(path, options);
}

//===----------------------------------------------------------------------===//
// Program
//===----------------------------------------------------------------------===//

Program::Program(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Program::Program(Program &&) noexcept = default;
Program &Program::operator=(Program &&) noexcept = default;
Program::~Program() = default;

const Target &Program::target() const { return impl_->target; }
const std::string &Program::pipeline() const { return impl_->pipeline; }
const std::string &Program::source() const { return impl_->source; }

Expected<std::vector<HostTensor>> Program::call_all(const std::string &function,
                                                    const std::vector<HostTensor> &inputs) const {
  const Function *f = impl_->module->lookupFunction(function);
  if (!f) {
    std::string names;
    for (const auto &g : impl_->module->functions())
      names += (names.empty() ? "@" : ", @") + g->name();
    return Error("no function @" + function + " in the program (functions: " + names + ")");
  }
  if (inputs.size() != f->numArguments())
    return Error("@" + function + " takes " + std::to_string(f->numArguments()) + " inputs, " +
                 std::to_string(inputs.size()) + " given");
  std::vector<Tensor> ins;
  ins.reserve(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    Tensor t = api::toInternal(inputs[i]);
    ElemKind want = f->argument(unsigned(i))->type().elem;
    // Floats convert to the argument's float type (an f32 input for an f16 argument).
    if (t.elem() != want && isFloat(t.elem()) && isFloat(want))
      t = Tensor::fromF32As(want, t.shape(), t.toF32());
    ins.push_back(std::move(t));
  }
  auto outs = impl_->executor->run(function, ins);
  if (!outs)
    return api::toError(outs.takeError());
  std::vector<HostTensor> r;
  for (const Tensor &t : *outs)
    r.push_back(api::toPublic(t));
  return r;
}

Expected<HostTensor> Program::call(const std::string &function,
                                   const std::vector<HostTensor> &inputs) const {
  auto all = call_all(function, inputs);
  if (!all)
    return all.error();
  if (all->empty())
    return Error("@" + function + " returns no result");
  return std::move((*all)[0]);
}

std::vector<FunctionInfo> Program::functions() const {
  auto spec = [](const TensorType &t) {
    bool ok;
    TensorSpec s;
    s.dtype = api::publicType(t.elem, ok);
    s.shape = t.dims;
    return s;
  };
  std::vector<FunctionInfo> r;
  for (const auto &f : impl_->module->functions()) {
    FunctionInfo fi;
    fi.name = f->name();
    for (Value *a : f->arguments())
      fi.arguments.push_back(spec(a->type()));
    for (const TensorType &t : f->resultTypes())
      fi.results.push_back(spec(t));
    r.push_back(std::move(fi));
  }
  return r;
}

std::string Program::ir() const {
  PrintOptions po;
  po.elideInlineBytes = 64;
  return printModuleToString(*impl_->module, po);
}

std::vector<std::pair<std::string, uint64_t>> Program::counters() const {
  if (impl_->cpu) {
    CpuExecutor::Stats s = impl_->cpu->stats();
    return {{"jit_ops", s.jitOps}, {"reference_ops", s.referenceOps}, {"fallbacks", s.fallbacks}};
  }
#ifdef QLC_HAVE_NPU_EMU
  if (impl_->npu) {
    NpuEmuExecutor::Stats s = impl_->npu->stats();
    return {{"h2d_bytes", s.h2dBytes},
            {"d2h_bytes", s.d2hBytes},
            {"weight_bytes", s.weightBytes},
            {"peak_device_bytes", s.peakDeviceBytes},
            {"ops", s.ops}};
  }
#endif
  return {};
}

} // namespace qlc
