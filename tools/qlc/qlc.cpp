// qlc: the user's driver (docs/cli.md). inspect, import, dequant, export, compile --emit and bench
// here; compile and run through the runtime API in program_commands.cpp.
#include <cmath>
#include <random>
#include <unistd.h>

#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include "import/export.h"
#include "import/importer.h"
#include "io/npy.h"
#include "ir/diagnostics.h"
#include "ir/op_registry.h"
#include "ir/parser.h"
#include "ir/printer.h"
#include "ir/verifier.h"
#include "bench/bench.h"
#include "codegen/jit.h"
#include "passes/pass_manager.h"
#include "runtime/cpu/cpu_executor.h"
#include "runtime/reference_executor.h"
#include "runtime/weight_store.h"
#include "schemes/all_schemes.h"
#include "tools/qlc/commands.h"

using namespace qlc;
using namespace qlc::driver;
namespace cl = llvm::cl;

cl::OptionCategory driver::qlcCat("qlc options");
static cl::SubCommand inspectCmd("inspect", "Print every weight: scheme, shape, parameters, bytes");
static cl::SubCommand importCmd("import", "Write the IR of a checkpoint (weights referenced, not copied)");
static cl::SubCommand dequantCmd("dequant", "Write the reference-dequantized f32 of one weight as .npy");
static cl::SubCommand exportCmd("export", "Lower for a device layout and write a checkpoint a "
                                            "server loads with no repack (marlin, npu)");
cl::SubCommand driver::runCmd("run", "Run a function of a model or saved program on given or random inputs");
cl::SubCommand driver::compileCmd("compile", "Lower for a target and save the program (-o DIR), or print its kernels (--emit)");
cl::SubCommand driver::benchCmd("bench", "Time a model's functions (qlc bench MODEL), or measure bandwidth, "
                                        "Eigen and the CPU JIT kernels (docs/performance.md; same as qlc-bench)");
static cl::opt<bool> benchQuick("quick", cl::desc("bench: the smoke subset (about 30 s; the full run about 3 min)"),
                                cl::sub(benchCmd), cl::cat(qlcCat));
static cl::opt<std::string> benchJson("json", cl::desc("bench: write the results as JSON"),
                                      cl::value_desc("file"), cl::sub(benchCmd), cl::cat(qlcCat));
static cl::opt<std::string> benchFilter("filter", cl::desc("bench: only cases matching this regex"),
                                        cl::sub(benchCmd), cl::cat(qlcCat));
static cl::opt<std::string> benchModel(cl::Positional, cl::desc("[model | program dir]"),
                                       cl::Optional, cl::sub(benchCmd), cl::cat(qlcCat));
static cl::opt<double> benchMinTime("min-time", cl::desc("bench: seconds per case (default 0.5)"),
                                    cl::init(0.5), cl::sub(benchCmd), cl::cat(qlcCat));

cl::opt<std::string> driver::modelPath(cl::Positional, cl::desc("<model dir | .safetensors | .gguf | .qir | program dir>"),
                                      cl::Required, cl::sub(inspectCmd), cl::sub(importCmd),
                                      cl::sub(exportCmd),
                                      cl::sub(dequantCmd), cl::sub(runCmd), cl::sub(compileCmd),
                                      cl::cat(qlcCat));
static cl::opt<std::string> weightName(cl::Positional, cl::desc("<weight or checkpoint tensor name>"),
                                       cl::Required, cl::sub(dequantCmd), cl::cat(qlcCat));
cl::opt<std::string> driver::outputPath("o", cl::desc("Output file (compile: the program folder)"), cl::value_desc("file"),
                                       cl::init("-"), cl::sub(importCmd), cl::sub(dequantCmd),
                                       cl::sub(exportCmd), cl::sub(compileCmd),
                                       cl::sub(runCmd), cl::cat(qlcCat));
cl::opt<bool> driver::quiet("quiet", cl::desc("No progress output or notes"), cl::sub(inspectCmd),
                            cl::sub(exportCmd), cl::sub(importCmd), cl::sub(dequantCmd), cl::sub(runCmd),
                            cl::sub(compileCmd), cl::sub(benchCmd), cl::cat(qlcCat));
cl::opt<std::string> driver::target("target", cl::desc("Where to run: reference | cpu | npu-emu "
                                                    "(run: default reference, bench: cpu, or a "
                                                    "program's own)"),
                                   cl::init("reference"), cl::sub(runCmd), cl::sub(compileCmd),
                                   cl::sub(benchCmd), cl::cat(qlcCat));
static cl::opt<std::string> emitKind("emit", cl::desc("compile: print the cpu kernels instead of saving: llvm | asm"),
                                     cl::init("llvm"), cl::sub(compileCmd), cl::cat(qlcCat));
static cl::opt<std::string> layoutOpt("layout", cl::desc("Device layout: marlin | npu"),
                                      cl::Required, cl::sub(exportCmd), cl::cat(qlcCat));

int driver::fail(const llvm::Twine &msg) {
  llvm::errs() << "qlc: error: " << msg << "\n";
  return 1;
}

std::string driver::humanBytes(uint64_t b) {
  const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = double(b);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u ? "%.1f %s" : "%.0f %s", v, units[u]);
  return buf;
}

/// A module from a .qir file (with its checkpoint, if any) or from a checkpoint.
struct Loaded {
  llvm::SourceMgr sm;
  std::unique_ptr<Module> module;
  std::unique_ptr<WeightStore> store;
};

static llvm::Error loadModel(llvm::StringRef path, Loaded &out) {
  if (path.ends_with(".qir")) {
    auto buf = llvm::MemoryBuffer::getFile(path, /*IsText=*/true);
    if (!buf)
      return importError(path + ": cannot open: " + buf.getError().message());
    unsigned id = out.sm.AddNewSourceBuffer(std::move(*buf), llvm::SMLoc());
    DiagnosticEngine diag(&out.sm);
    out.module = parseModule(out.sm, id, diag);
    if (!out.module || llvm::failed(verifyModule(*out.module, diag)))
      return importError(path + ": invalid module (see the errors above)");
  } else {
    auto m = importCheckpoint(path);
    if (!m)
      return m.takeError();
    out.module = std::move(*m);
    DiagnosticEngine diag;
    if (llvm::failed(verifyModule(*out.module, diag)))
      return importError(path + ": the imported module does not verify (see the errors above)");
  }
  auto store = WeightStore::openForModule(*out.module, path.ends_with(".qir") ? path : "");
  if (!store)
    return store.takeError();
  out.store = std::move(*store);
  return llvm::Error::success();
}

static uint64_t weightBytes(const Weight &w) {
  uint64_t b = 0;
  for (const WeightPart &p : w.parts())
    b += uint64_t(p.type.numBytes().value_or(0));
  return b;
}

/// Scheme column: the type's mnemonic, or the dense dtype.
static std::string schemeOf(const Weight &w) {
  return w.isDense() ? "dense " + elemKindName(w.denseType().elem).str() : w.quantType().mnemonic();
}

/// Parameters other than the shape (bits, group, type, ...).
static std::string paramsOf(const Weight &w) {
  if (w.isDense())
    return "";
  std::string s;
  for (const auto &[k, v] : w.quantType().params)
    if (k != "shape" && k != "experts")
      s += (s.empty() ? "" : " ") + k + "=" + v.str();
  return s;
}

static int runInspect() {
  Loaded l;
  if (llvm::Error e = loadModel(modelPath, l))
    return fail(llvm::toString(std::move(e)));
  const Module &m = *l.module;
  auto &os = llvm::outs();
  if (auto it = m.attrs().find("checkpoint"); it != m.attrs().end())
    os << "checkpoint: " << it->second.getString() << "\n";
  size_t nameW = 6;
  for (const auto &w : m.weights())
    nameW = std::max(nameW, w->name().size());
  os << llvm::left_justify("weight", nameW) << "  " << llvm::left_justify("scheme", 12) << "  "
     << llvm::left_justify("shape", 18) << "  " << llvm::left_justify("parameters", 34) << "  "
     << "bytes\n";
  uint64_t total = 0, quant = 0, logical = 0;
  std::map<std::string, unsigned> perScheme;
  size_t i = 0, n = m.weights().size();
  bool progress = !quiet && n > 200 && isatty(2);
  for (const auto &w : m.weights()) {
    if (progress && (++i % 50 == 0 || i == n))
      llvm::errs() << "\rinspect: " << i << "/" << n << " weights";
    uint64_t b = weightBytes(*w);
    total += b;
    if (!w->isDense())
      quant += b;
    int64_t elems = 1;
    for (int64_t d : w->logicalShape())
      elems *= d;
    logical += uint64_t(elems);
    ++perScheme[schemeOf(*w)];
    os << llvm::left_justify(w->name(), nameW) << "  " << llvm::left_justify(schemeOf(*w), 12)
       << "  " << llvm::left_justify(dimsStr(w->logicalShape()), 18) << "  "
       << llvm::left_justify(paramsOf(*w), 34) << "  " << b << "\n";
  }
  if (progress)
    llvm::errs() << "\n";
  os << "total: " << n << " weights, " << total << " bytes (" << humanBytes(total) << "), "
     << quant << " bytes quantized, " << logical << " parameters";
  if (logical)
    os << llvm::format(", %.2f bits/parameter", 8.0 * double(total) / double(logical));
  os << "\n";
  for (const auto &[s, c] : perScheme)
    os << "  " << s << ": " << c << " weights\n";
  os << "functions:";
  for (const auto &f : m.functions())
    os << " @" << f->name();
  os << "\n";
  return 0;
}

static int runImport() {
  Loaded l;
  if (llvm::Error e = loadModel(modelPath, l))
    return fail(llvm::toString(std::move(e)));
  std::error_code ec;
  llvm::raw_fd_ostream os(outputPath, ec, llvm::sys::fs::OF_Text);
  if (ec)
    return fail(outputPath + ": cannot write: " + ec.message());
  printModule(*l.module, os);
  return 0;
}

static int runDequant() {
  Loaded l;
  if (llvm::Error e = loadModel(modelPath, l))
    return fail(llvm::toString(std::move(e)));
  const Weight *w = l.module->lookupWeight(weightName);
  if (!w) // a checkpoint tensor name: the weight that reads it
    for (const auto &cand : l.module->weights())
      for (const WeightPart &p : cand->parts())
        for (const std::string &s : p.sources)
          if (s == weightName)
            w = cand.get();
  if (!w)
    return fail("no weight or checkpoint tensor named '" + weightName + "' in " + modelPath);
  auto data = dequantizeWeight(*w, l.store.get());
  if (!data)
    return fail(llvm::toString(data.takeError()));
  if (outputPath == "-")
    return fail("dequant needs -o FILE.npy");
  if (llvm::Error e = io::writeNpy(outputPath, "<f4", w->logicalShape(), data->data(),
                                   data->size() * sizeof(float)))
    return fail(llvm::toString(std::move(e)));
  if (!quiet)
    llvm::errs() << "qlc: wrote @" << w->name() << " " << dimsStr(w->logicalShape()) << " f32 to "
                 << outputPath << "\n";
  return 0;
}

static int runExport() {
  if (layoutOpt != "marlin" && layoutOpt != "npu")
    return fail("--layout must be marlin or npu, got '" + layoutOpt + "'");
  if (outputPath == "-")
    return fail("export needs -o DIR");
  Loaded l;
  if (llvm::Error e = loadModel(modelPath, l))
    return fail(llvm::toString(std::move(e)));
  DiagnosticEngine diag;
  const WeightStore *store = l.store.get();
  PassContext ctx{diag, [store]() -> llvm::Expected<const WeightStore *> { return store; }};
  PassManager pm(ctx);
  std::string err = pm.addPipeline("lower-" + layoutOpt);
  if (!err.empty())
    return fail(err);
  if (!quiet)
    llvm::errs() << "qlc: lowering " << modelPath << " with lower-" << layoutOpt << "\n";
  if (llvm::failed(pm.run(*l.module)))
    return fail("lowering for " + layoutOpt + " failed (see the errors above)");
  if (llvm::Error e = exportCheckpoint(*l.module, store, outputPath, layoutOpt))
    return fail(llvm::toString(std::move(e)));
  if (!quiet)
    llvm::errs() << "qlc: wrote " << outputPath << "/{model.safetensors,model.qir,config.json}\n";
  return 0;
}

/// Lowers a loaded module for the cpu target (pipeline lower-cpu).
static llvm::Error lowerForCpu(Loaded &l) {
  DiagnosticEngine diag(&l.sm);
  const WeightStore *store = l.store.get();
  PassContext ctx{diag, [store]() -> llvm::Expected<const WeightStore *> { return store; }};
  PassManager pm(ctx);
  if (std::string e = pm.addPipeline("lower-cpu"); !e.empty())
    return importError(e);
  if (llvm::failed(pm.run(*l.module)))
    return importError("lowering for --target cpu failed (see the errors above)");
  return llvm::Error::success();
}

/// `qlc compile MODEL --target cpu --emit=llvm|asm`: the kernel of every cpu.qmatmul
/// specialisation (gemv and gemm unless the op's M is static), each printed once.
int driver::runEmitKernels() {
  if (target != "cpu")
    return fail("compile --emit supports --target cpu only, got '" + target + "'");
  if (emitKind != "llvm" && emitKind != "asm")
    return fail("--emit must be llvm or asm, got '" + emitKind + "'");
  Loaded l;
  if (llvm::Error e = loadModel(modelPath, l))
    return fail(llvm::toString(std::move(e)));
  if (llvm::Error e = lowerForCpu(l))
    return fail(llvm::toString(std::move(e)));
  std::map<std::string, std::pair<codegen::KernelSpec, std::vector<std::string>>> kernels;
  std::vector<std::string> order;
  for (const auto &f : l.module->functions())
    for (const auto &op : f->ops()) {
      if (op->name() != "cpu.qmatmul")
        continue;
      const Weight *w = l.module->lookupWeight(op->symbols()[0]);
      codegen::SpecOrReason sr = codegen::specForWeight(*w);
      if (!sr.spec) {
        llvm::errs() << "qlc: note: cpu: no JIT kernel for @" << w->name() << " (" << sr.reason
                     << ")\n";
        continue;
      }
      int64_t rows = 1;
      bool dynamic = false;
      const TensorType &xt = op->operand(0)->type();
      for (size_t i = 0; i + 1 < xt.dims.size(); ++i)
        if (xt.dims[i] == TensorType::kDynamic)
          dynamic = true;
        else
          rows *= xt.dims[i];
      std::vector<codegen::MClass> classes;
      if (dynamic)
        classes = {codegen::MClass::Gemv, codegen::MClass::Gemm};
      else
        classes = {codegen::mClassFor(rows)};
      for (codegen::MClass c : classes) {
        codegen::KernelSpec s = *sr.spec;
        s.mclass = c;
        auto [it, fresh] = kernels.try_emplace(s.key(), s, std::vector<std::string>{});
        if (fresh)
          order.push_back(s.key());
        std::vector<std::string> &users = it->second.second;
        if (std::find(users.begin(), users.end(), w->name()) == users.end())
          users.push_back(w->name());
      }
    }
  std::error_code ec;
  llvm::raw_fd_ostream os(outputPath, ec, llvm::sys::fs::OF_Text);
  if (ec)
    return fail(outputPath + ": cannot write: " + ec.message());
  const char *comment = emitKind == "llvm" ? ";" : "#";
  os << comment << " qlc compile --target cpu: " << order.size()
     << " kernel specialisation(s), host " << codegen::hostCpuName() << ", "
     << codegen::hostVectorWidth() << " f32 lanes\n";
  for (const std::string &key : order) {
    const auto &[spec, users] = kernels.at(key);
    os << comment << " kernel " << spec.symbol() << " (" << key << ") for";
    for (const std::string &u : users)
      os << " @" << u;
    os << "\n";
    auto text = emitKind == "llvm" ? codegen::kernelLLVMIR(spec) : codegen::kernelAssembly(spec);
    if (!text)
      return fail(llvm::toString(text.takeError()));
    os << *text << "\n";
  }
  return 0;
}

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  registerCoreOps();
  registerGenericPasses();
  schemes::registerAllSchemes();
  cl::HideUnrelatedOptions(qlcCat);
  cl::ParseCommandLineOptions(argc, argv, "qlc: a compiler for quantized LLM layers\n");
  if (inspectCmd)
    return runInspect();
  if (importCmd)
    return runImport();
  if (dequantCmd)
    return runDequant();
  if (runCmd)
    return runRun();
  if (compileCmd)
    return emitKind.getNumOccurrences() ? runEmitKernels() : runCompile();
  if (exportCmd)
    return runExport();
  if (benchCmd && !benchModel.empty())
    return runBenchModel(benchModel, benchMinTime);
  if (benchCmd) {
    bench::BenchOptions o;
    o.quick = benchQuick;
    o.json = benchJson;
    o.filter = benchFilter;
    o.minTime = benchMinTime;
    return bench::runBench(o);
  }
  cl::PrintHelpMessage();
  return 1;
}
