#include "codegen/jit.h"

#include <chrono>
#include <ctime>

#include "llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h"
#include "llvm/ExecutionEngine/Orc/LLJIT.h"
#include "llvm/ExecutionEngine/Orc/ThreadSafeModule.h"
#include "llvm/IR/LLVMContext.h"
#include "llvm/IR/LegacyPassManager.h"
#include "llvm/IR/Module.h"
#include "llvm/IR/Verifier.h"
#include "llvm/Passes/PassBuilder.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/TargetParser/Host.h"

#include "codegen/kernel_emitter.h"

namespace qlc::codegen {
namespace {

void initNative() {
  static std::once_flag once;
  std::call_once(once, [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
    llvm::InitializeNativeTargetAsmParser();
  });
}

llvm::Error err(const llvm::Twine &msg) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), msg);
}

/// The host machine: CPU name, its features, aggressive codegen.
llvm::Expected<llvm::orc::JITTargetMachineBuilder> hostJTMB() {
  initNative();
  auto jtmb = llvm::orc::JITTargetMachineBuilder::detectHost();
  if (!jtmb)
    return jtmb.takeError();
  jtmb->setCPU(llvm::sys::getHostCPUName().str());
  jtmb->setCodeGenOptLevel(llvm::CodeGenOptLevel::Aggressive);
  return jtmb;
}

/// The function passes every kernel gets (`opt -passes=` syntax).
constexpr const char *kKernelPipeline =
    "function(sroa,early-cse,instcombine<no-verify-fixpoint>,simplifycfg,loop-mssa(licm),"
    "early-cse,simplifycfg)";

/// Emits the kernel and optimises it for the host with kKernelPipeline.
llvm::Expected<std::unique_ptr<llvm::Module>> buildOptimized(const KernelSpec &spec,
                                                             llvm::LLVMContext &ctx,
                                                             llvm::TargetMachine &tm) {
  if (spec.act == Activations::Int8 && !(spec.int8Capable() && hostHasInt8Dot()))
    return err("qlc codegen: no int8-activation kernel for " + spec.key() +
               (spec.int8Capable() ? " on this host (it needs AVX-512 VNNI, BW and VL)"
                                   : " (the layout has f32 kernels only)"));
  std::unique_ptr<llvm::Module> m = emitKernelModule(spec, ctx);
  m->setDataLayout(tm.createDataLayout());
  std::string verr;
  llvm::raw_string_ostream vos(verr);
  if (llvm::verifyModule(*m, &vos))
    return err("qlc codegen: invalid IR for kernel " + spec.key() + ": " + verr);
  llvm::LoopAnalysisManager lam;
  llvm::FunctionAnalysisManager fam;
  llvm::CGSCCAnalysisManager cgam;
  llvm::ModuleAnalysisManager mam;
  llvm::PassBuilder pb(&tm);
  pb.registerModuleAnalyses(mam);
  pb.registerCGSCCAnalyses(cgam);
  pb.registerFunctionAnalyses(fam);
  pb.registerLoopAnalyses(lam);
  pb.crossRegisterProxies(lam, fam, cgam, mam);
  // Not O3: the emitter already chose the vectors, tiles and loop order, so O3's inliner,
  // vectorizers, unrollers and loop rewrites find nothing to do and took 30-45 ms a kernel (half
  // the compile time). What the emitted IR needs is its slots promoted to registers, the address
  // and constant arithmetic folded, and loop-invariant loads hoisted. Measured within the noise
  // of O3 on every benchmark case once the emitter unrolled Q4_K's sub-block pairs itself
  // (codegen/README.md "Compile time"). After licm a second (cheap) early-cse instead of gvn and
  // instcombine: those two took 25-30% of a K-quant gemv's compile and changed no benchmark case
  // beyond the noise (session 6).
  llvm::ModulePassManager mpm;
  if (llvm::Error e = pb.parsePassPipeline(mpm, kKernelPipeline))
    return err("qlc codegen: bad kernel pipeline: " + llvm::toString(std::move(e)));
  mpm.run(*m, mam);
  return m;
}

llvm::Expected<std::unique_ptr<llvm::TargetMachine>> hostTM() {
  auto jtmb = hostJTMB();
  if (!jtmb)
    return jtmb.takeError();
  return jtmb->createTargetMachine();
}

} // namespace

KernelCache::KernelCache() = default;
KernelCache::~KernelCache() = default;

KernelCache &KernelCache::global() {
  static KernelCache c;
  return c;
}

unsigned KernelCache::compilations() const {
  std::lock_guard<std::mutex> l(mu_);
  return unsigned(kernels_.size());
}

double KernelCache::totalCompileMs() const {
  std::lock_guard<std::mutex> l(mu_);
  double t = 0;
  for (const auto &[k, v] : kernels_)
    t += v->compileMs;
  return t;
}

std::vector<std::pair<std::string, double>> KernelCache::compileTimes(bool cpu) const {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<std::pair<std::string, double>> v;
  for (const auto &[k, c] : kernels_)
    v.push_back({k, cpu ? c->compileCpuMs : c->compileMs});
  return v;
}

std::vector<KernelSpec> KernelCache::specs() const {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<KernelSpec> v;
  for (const auto &[k, c] : kernels_)
    v.push_back(c->spec);
  return v;
}

static double threadCpuMs() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) * 1e3 + double(ts.tv_nsec) * 1e-6;
}

llvm::Expected<const CompiledKernel *> KernelCache::get(const KernelSpec &spec) {
  std::lock_guard<std::mutex> l(mu_);
  std::string key = spec.key();
  if (auto it = kernels_.find(key); it != kernels_.end())
    return it->second.get();
  auto t0 = std::chrono::steady_clock::now();
  const double c0 = threadCpuMs();
  if (!jit_) {
    auto jtmb = hostJTMB();
    if (!jtmb)
      return jtmb.takeError();
    auto j = llvm::orc::LLJITBuilder().setJITTargetMachineBuilder(std::move(*jtmb)).create();
    if (!j)
      return j.takeError();
    jit_ = std::move(*j);
  }
  auto tm = hostTM();
  if (!tm)
    return tm.takeError();
  auto ctx = std::make_unique<llvm::LLVMContext>();
  auto m = buildOptimized(spec, *ctx, **tm);
  if (!m)
    return m.takeError();
  if (llvm::Error e =
          jit_->addIRModule(llvm::orc::ThreadSafeModule(std::move(*m), std::move(ctx))))
    return e;
  auto addr = jit_->lookup(spec.symbol());
  if (!addr)
    return addr.takeError();
  auto ck = std::make_unique<CompiledKernel>();
  ck->spec = spec;
  ck->fn = addr->toPtr<KernelFn>();
  ck->compileMs =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  ck->compileCpuMs = threadCpuMs() - c0;
  return kernels_.emplace(key, std::move(ck)).first->second.get();
}

llvm::Expected<std::string> kernelLLVMIR(const KernelSpec &spec) {
  auto tm = hostTM();
  if (!tm)
    return tm.takeError();
  llvm::LLVMContext ctx;
  auto m = buildOptimized(spec, ctx, **tm);
  if (!m)
    return m.takeError();
  std::string s;
  llvm::raw_string_ostream os(s);
  (*m)->print(os, nullptr);
  return s;
}

llvm::Expected<std::string> kernelAssembly(const KernelSpec &spec) {
  auto tm = hostTM();
  if (!tm)
    return tm.takeError();
  llvm::LLVMContext ctx;
  auto m = buildOptimized(spec, ctx, **tm);
  if (!m)
    return m.takeError();
  llvm::SmallString<0> buf;
  llvm::raw_svector_ostream os(buf);
  llvm::legacy::PassManager pm;
  if ((*tm)->addPassesToEmitFile(pm, os, nullptr, llvm::CodeGenFileType::AssemblyFile))
    return err("qlc codegen: the host target cannot emit assembly");
  pm.run(**m);
  return std::string(buf.str());
}

} // namespace qlc::codegen
