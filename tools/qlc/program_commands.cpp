// `qlc compile MODEL --target T -o DIR` and `qlc run MODEL|DIR ...`: the runtime API (qlc/runtime.h)
// driven from the command line, with progress bars, random or .npy inputs, an output summary and
// `--compare reference`.
#include <chrono>
#include <cmath>
#include <cstring>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <unistd.h>

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include "codegen/kernel_spec.h"
#include "io/npy.h"
#include "ir/ir.h"
#include "passes/pass.h"
#include "qlc/runtime.h"
#include "runtime/api/api_internal.h"
#include "tools/qlc/commands.h"

using namespace qlc;
using namespace qlc::driver;
namespace cl = llvm::cl;

static cl::opt<std::string> function("function", cl::desc("Function to run (default: the first block; "
                                                          "bench: every function)"),
                                     cl::sub(runCmd), cl::sub(benchCmd), cl::cat(qlcCat));
static cl::list<std::string> inputs("input", cl::desc("An input: file.npy (one per argument), or random:SEED for all"),
                                    cl::sub(runCmd), cl::cat(qlcCat));
static cl::opt<int64_t> tokens("tokens", cl::desc("Size of dynamic dims for random inputs"),
                               cl::init(4), cl::sub(runCmd), cl::sub(benchCmd), cl::cat(qlcCat));
static cl::opt<std::string> compareWith("compare", cl::desc("Also run on another target (reference, "
                                                            "cpu, npu-emu) and report the error"),
                                        cl::sub(runCmd), cl::cat(qlcCat));
static cl::opt<double> tolerance("tolerance", cl::desc("--compare: largest accepted max|y - ref| / "
                                                       "max|ref| (default: by target, docs/cli.md)"),
                                 cl::init(-1), cl::sub(runCmd), cl::cat(qlcCat));
static cl::opt<std::string> npuMem("npu-mem", cl::desc("npu-emu device memory (e.g. 16GiB, 512MiB)"),
                                   cl::init("16GiB"), cl::sub(runCmd), cl::sub(compileCmd),
                                   cl::sub(benchCmd), cl::cat(qlcCat));
static cl::opt<bool> trace("trace", cl::desc("npu-emu: print every device op to stderr"),
                           cl::sub(runCmd), cl::cat(qlcCat));
static cl::opt<unsigned> threads("threads", cl::desc("cpu: kernel threads (0 = all cores)"),
                                 cl::init(0), cl::sub(runCmd), cl::sub(compileCmd), cl::sub(benchCmd),
                                 cl::cat(qlcCat));
static cl::opt<std::string> pipeline("pipeline", cl::desc("Lowering pipeline (default: the target's: "
                                                          "lower-cpu, lower-npu, none for reference)"),
                                     cl::init("default"), cl::sub(runCmd), cl::sub(compileCmd),
                                     cl::sub(benchCmd), cl::cat(qlcCat));
static cl::opt<bool> progressFlag("progress", cl::desc("Progress bars even when stderr is not a "
                                                       "terminal (one line per step)"),
                                  cl::sub(runCmd), cl::sub(compileCmd), cl::sub(benchCmd),
                                  cl::cat(qlcCat));

namespace {

/// A progress bar on stderr: redrawn in place on a terminal, one line per step when forced with
/// --progress on a pipe or file. Off with --quiet.
class ProgressBar {
public:
  ProgressBar() : tty_(isatty(2)), on_(!quiet && (progressFlag || tty_)) {}
  ProgressCallback callback() {
    if (!on_)
      return {};
    return [this](const Progress &p) { draw(p); };
  }

private:
  void draw(const Progress &p) {
    const unsigned width = 24;
    unsigned fill = p.total ? unsigned(width * p.done / p.total) : width;
    std::string line = p.stage;
    line.resize(std::max<size_t>(line.size(), 8), ' ');
    line += " [" + std::string(fill, '#') + std::string(width - fill, '.') + "] " +
            std::to_string(p.done) + "/" + std::to_string(p.total);
    if (!p.item.empty())
      line += " " + p.item;
    if (tty_)
      llvm::errs() << "\r" << line << "\x1b[K" << (p.done == p.total ? "\n" : "");
    else
      llvm::errs() << line << "\n";
  }
  bool tty_, on_;
};

bool isProgramDir(llvm::StringRef path) {
  llvm::SmallString<256> m(path);
  llvm::sys::path::append(m, "manifest.json");
  return llvm::sys::fs::is_directory(path) && llvm::sys::fs::exists(m);
}

/// --target with --npu-mem / --threads applied.
Expected<Target> targetFromFlags(const std::string &name) {
  auto t = Target::parse(name);
  if (!t)
    return t;
  if (t->kind() == Target::Kind::npu_emu) {
    std::optional<uint64_t> bytes = parseByteSize(npuMem);
    if (!bytes || *bytes == 0)
      return Error("--npu-mem: '" + npuMem + "' is not a size (e.g. 16GiB, 512MiB, 1000000)");
    return Target::npu_emu(*bytes);
  }
  if (t->kind() == Target::Kind::cpu)
    return Target::cpu(threads);
  return t;
}

CompileOptions compileOptions(ProgressBar &bar) {
  CompileOptions o;
  o.pipeline = pipeline;
  o.progress = bar.callback();
  o.notes = quiet ? nullptr : &std::cerr;
  o.trace = trace ? &std::cerr : nullptr;
  return o;
}

int failWith(const Error &e) {
  if (!e.diagnostics().empty())
    llvm::errs() << e.diagnostics() << (llvm::StringRef(e.diagnostics()).ends_with("\n") ? "" : "\n");
  return fail(e.message());
}

/// The function to run: --function, else the first that is not @embed, else the first.
const FunctionInfo *pickFunction(const std::vector<FunctionInfo> &fs, std::string &err) {
  for (const FunctionInfo &f : fs)
    if (function.empty() ? f.name != "embed" : f.name == function)
      return &f;
  if (!function.empty()) {
    err = "no function @" + function + " in " + modelPath;
    return nullptr;
  }
  if (fs.empty())
    err = modelPath + " has no function to run";
  return fs.empty() ? nullptr : &fs.front();
}

Expected<HostTensor> npyInput(const std::string &path, const TensorSpec &want) {
  auto a = io::readNpy(path);
  if (!a)
    return api::toError(a.takeError());
  static const std::map<std::string, ElemKind> kinds{
      {"<f4", ElemKind::F32}, {"<f2", ElemKind::F16}, {"<i4", ElemKind::I32},
      {"<i8", ElemKind::I64}, {"|i1", ElemKind::I8},  {"|u1", ElemKind::U8}};
  auto it = kinds.find(a->descr);
  if (it == kinds.end())
    return Error(path + ": dtype " + a->descr + " is not supported");
  bool representable = false;
  DataType fileType = api::publicType(it->second, representable);
  if (representable && fileType == want.dtype) {
    HostTensor h(want.dtype, a->shape); // same type: the bytes as they are
    std::memcpy(h.data(), a->data.data(), std::min(a->data.size(), h.num_bytes()));
    return h;
  }
  // Convert numerically to the argument's type (an f32 file for an f16 argument, ids to i64).
  Tensor t(it->second, a->shape);
  std::memcpy(t.data(), a->data.data(), std::min(a->data.size(), t.numBytes()));
  return HostTensor::from_f32(a->shape, t.toF32(), want.dtype);
}

/// Random inputs: floats N(0, 1) from mt19937(seed); integer arguments (token ids) uniform below
/// the row count of the embedding table that reads them (16 if none).
Expected<std::vector<HostTensor>> randomInputs(const Program &p, const FunctionInfo &f,
                                               unsigned seed) {
  const Module &m = api::programModule(p);
  const Function *fn = m.lookupFunction(f.name);
  std::mt19937 rng(seed);
  std::vector<HostTensor> ins;
  for (unsigned i = 0; i < f.arguments.size(); ++i) {
    const TensorSpec &a = f.arguments[i];
    std::vector<int64_t> shape;
    int64_t n = 1;
    for (int64_t d : a.shape) {
      shape.push_back(d < 0 ? tokens.getValue() : d);
      n *= shape.back();
    }
    std::vector<float> v(static_cast<size_t>(n));
    if (a.dtype == DataType::f32 || a.dtype == DataType::f16 || a.dtype == DataType::bf16) {
      std::normal_distribution<float> nd(0, 1);
      for (float &x : v)
        x = nd(rng);
    } else {
      int64_t bound = 16;
      for (const auto &op : fn->ops())
        if (op->name() == "embedding" && op->operand(0) == fn->argument(i))
          bound = m.lookupWeight(op->symbols()[0])->logicalShape()[0];
      if (bound <= 0)
        return Error("@" + f.name + " reads an embedding table with no rows");
      std::uniform_int_distribution<int64_t> ud(0, bound - 1);
      for (float &x : v)
        x = float(ud(rng));
    }
    ins.push_back(HostTensor::from_f32(shape, v, a.dtype));
  }
  return ins;
}

void printSummary(const HostTensor &t, size_t i) {
  std::vector<float> v = t.to_f32();
  double sum = 0, sq = 0, mx = 0;
  for (float x : v) {
    sum += x;
    sq += double(x) * x;
    mx = std::max(mx, double(std::fabs(x)));
  }
  auto &os = llvm::outs();
  double mean = v.empty() ? 0 : sum / double(v.size());
  os << "  result #" << i << ": " << t.type_str()
     << llvm::format("  mean %.6g  rms %.6g  max|x| %.6g  first [", mean,
                     v.empty() ? 0.0 : std::sqrt(sq / double(v.size())), mx);
  for (size_t j = 0; j < std::min<size_t>(4, v.size()); ++j)
    os << (j ? ", " : "") << llvm::format("%.6g", v[j]);
  os << (v.size() > 4 ? ", ...]\n" : "]\n");
}

/// Whether a cpu program's kernels quantize activations to int8 (GGUF layouts on hosts with 8-bit
/// dot products, unless QLC_CPU_ACTIVATIONS=f32): the mode codegen picks for each weight.
bool usesInt8Activations(const Program &p) {
  if (p.target().kind() != Target::Kind::cpu)
    return false;
  for (const auto &w : api::programModule(p).weights()) {
    if (w->isDense())
      continue;
    codegen::SpecOrReason sr = codegen::specForWeight(*w);
    if (sr.spec && sr.spec->act == codegen::Activations::Int8)
      return true;
  }
  return false;
}

/// The default --compare tolerance on max|y - ref| / max|ref| (docs/cli.md explains): cpu 1e-4
/// (f32 accumulation) or 5e-2 with int8 activations, npu-emu 5e-3 (f16 pre-dequantized weights).
double defaultTolerance(const Program &p) {
  switch (p.target().kind()) {
  case Target::Kind::reference: return 0.0;
  case Target::Kind::cpu: return usesInt8Activations(p) ? 5e-2 : 1e-4;
  case Target::Kind::npu_emu: return 5e-3;
  }
  return 0.0;
}

/// The program --compare runs: MODEL itself compiled for `other`, or for a saved program its
/// source when it still exists; for the reference, else the program's lowered IR (every backend
/// op has reference semantics).
Expected<Program> comparisonProgram(const Program &p, const Target &other, bool fromProgramDir,
                                    ProgressBar &bar) {
  Runtime rt(other);
  CompileOptions o;
  o.progress = bar.callback();
  if (!fromProgramDir)
    return rt.compile(modelPath, o);
  if (!p.source().empty() && llvm::sys::fs::exists(p.source()))
    return rt.compile(p.source(), o);
  if (other.kind() != Target::Kind::reference)
    return Error("--compare " + std::string(other.name()) + ": the program's source '" + p.source() +
                 "' is gone");
  if (!quiet)
    llvm::errs() << "qlc: note: the program's source '" << p.source()
                 << "' is gone; comparing with its lowered IR on the reference executor\n";
  llvm::SmallString<256> qir(modelPath);
  llvm::sys::path::append(qir, "program.qir");
  return rt.compile_module(std::string(qir), o);
}

/// MODEL compiled for --target (default `defaultTarget`), or a saved program loaded for its own
/// target (or --target, which must match).
Expected<Program> openProgram(const std::string &path, const std::string &defaultTarget,
                              ProgressBar &bar) {
  std::string targetName = target.getNumOccurrences() ? target.getValue() : defaultTarget;
  if (isProgramDir(path) && !target.getNumOccurrences()) {
    auto saved = api::savedProgramTarget(path);
    if (!saved)
      return saved.error();
    targetName = saved->name();
  }
  auto t = targetFromFlags(targetName);
  if (!t)
    return t.error();
  return Runtime(*t).compile(path, compileOptions(bar));
}

} // namespace

int driver::runCompile() {
  if (target != "cpu" && target != "npu-emu")
    return fail("compile needs --target cpu or npu-emu, got '" + target + "'");
  if (outputPath == "-")
    return fail("compile needs -o DIR (the program folder), or --emit=llvm|asm to print kernels");
  auto t = targetFromFlags(target);
  if (!t)
    return failWith(t.error());
  ProgressBar bar;
  CompileOptions o = compileOptions(bar);
  Runtime rt(*t);
  auto p = rt.compile(modelPath, o);
  if (!p)
    return failWith(p.error());
  if (auto ok = p->save(outputPath, bar.callback()); !ok)
    return failWith(ok.error());
  if (!quiet)
    llvm::errs() << "qlc: compiled " << modelPath << " for " << t->name() << " ("
                 << (p->pipeline().empty() ? "no lowering" : p->pipeline()) << ", "
                 << p->functions().size() << " functions) into " << outputPath << "\n";
  return 0;
}

int driver::runRun() {
  if (tokens < 1 || tokens > 1000000)
    return fail("--tokens must be in [1, 1000000], got " + llvm::Twine(tokens.getValue()));
  std::optional<Target> compareTarget;
  if (!compareWith.empty()) {
    auto ct = targetFromFlags(compareWith);
    if (!ct)
      return fail("--compare: " + ct.error().message());
    compareTarget = *ct;
  }
  bool fromProgramDir = isProgramDir(modelPath);
  ProgressBar bar;
  auto p = openProgram(modelPath, "reference", bar);
  if (!p)
    return failWith(p.error());
  const Target t = p->target();
  std::vector<FunctionInfo> fs = p->functions();
  std::string err;
  const FunctionInfo *f = pickFunction(fs, err);
  if (!f)
    return fail(err);

  std::vector<HostTensor> ins;
  unsigned seed = 0;
  bool random = inputs.empty();
  if (inputs.size() == 1 && llvm::StringRef(inputs[0]).starts_with("random:")) {
    random = true;
    if (llvm::StringRef(inputs[0]).drop_front(7).getAsInteger(10, seed))
      return fail("--input random:SEED needs an integer seed, got '" + inputs[0] + "'");
  }
  if (random) {
    auto r = randomInputs(*p, *f, seed);
    if (!r)
      return failWith(r.error());
    ins = std::move(*r);
  } else {
    if (inputs.size() != f->arguments.size())
      return fail("@" + f->name + " takes " + llvm::Twine(f->arguments.size()) + " inputs, " +
                  llvm::Twine(inputs.size()) + " given");
    for (unsigned i = 0; i < inputs.size(); ++i) {
      auto x = npyInput(inputs[i], f->arguments[i]);
      if (!x)
        return failWith(x.error());
      ins.push_back(std::move(*x));
    }
  }
  auto outs = p->call_all(f->name, ins);
  if (!outs)
    return failWith(outs.error());
  auto &os = llvm::outs();
  os << "@" << f->name << " on " << t.name() << ":\n";
  for (size_t i = 0; i < outs->size(); ++i) {
    printSummary((*outs)[i], i);
    if (outputPath != "-" && i == 0) {
      std::vector<float> v = (*outs)[i].to_f32();
      if (llvm::Error e = io::writeNpy(outputPath, "<f4", (*outs)[i].shape(), v.data(), v.size() * 4))
        return fail(llvm::toString(std::move(e)));
    }
  }
  if (t.kind() == Target::Kind::npu_emu) {
    os << "  device:";
    for (const auto &[k, v] : p->counters())
      os << " " << k << "=" << v;
    os << "\n";
  }
  if (compareWith.empty())
    return 0;

  auto ref = comparisonProgram(*p, *compareTarget, fromProgramDir, bar);
  if (!ref)
    return failWith(ref.error());
  auto refOuts = ref->call_all(f->name, ins);
  if (!refOuts)
    return failWith(refOuts.error());
  const std::string refName = compareTarget->name();
  double tol = tolerance >= 0 ? tolerance.getValue()
                              : std::max(defaultTolerance(*p), defaultTolerance(*ref));
  bool ok = refOuts->size() == outs->size();
  for (size_t i = 0; ok && i < outs->size(); ++i) {
    std::vector<float> a = (*outs)[i].to_f32(), b = (*refOuts)[i].to_f32();
    if (a.size() != b.size() || (*outs)[i].shape() != (*refOuts)[i].shape()) {
      os << "compare: result #" << i << ": " << (*outs)[i].type_str() << " vs " << refName << " "
         << (*refOuts)[i].type_str() << "\n";
      ok = false;
      break;
    }
    double maxAbs = 0, refMax = 0;
    bool nan = false;
    for (size_t j = 0; j < a.size(); ++j) {
      nan |= std::isnan(a[j]) != std::isnan(b[j]);
      maxAbs = std::max(maxAbs, double(std::fabs(a[j] - b[j])));
      refMax = std::max(refMax, double(std::fabs(b[j])));
    }
    double rel = refMax > 0 ? maxAbs / refMax : maxAbs;
    bool pass = !nan && rel <= tol;
    os << "compare with " << refName << ": result #" << i
       << llvm::format(": max abs err %.3g, max rel err %.3g (max|ref| %.4g), tolerance %.3g: ",
                       maxAbs, rel, refMax, tol)
       << (nan ? "NaN mismatch, " : "") << (pass ? "OK" : "MISMATCH") << "\n";
    ok &= pass;
  }
  if (!ok)
    return fail("@" + f->name + " on " + t.name() + " does not agree with " +
                (compareTarget->kind() == Target::Kind::reference ? "the reference" : refName));
  return 0;
}

int driver::runBenchModel(llvm::StringRef model, double minSeconds) {
  if (tokens < 1 || tokens > 1000000)
    return fail("--tokens must be in [1, 1000000], got " + llvm::Twine(tokens.getValue()));
  if (!(minSeconds > 0 && minSeconds <= 3600))
    return fail("--min-time must be in (0, 3600] seconds");
  ProgressBar bar;
  auto p = openProgram(model.str(), "cpu", bar);
  if (!p)
    return failWith(p.error());
  auto &os = llvm::outs();
  os << "qlc bench " << model << " on " << p->target().name() << " ("
     << (p->pipeline().empty() ? "no lowering" : p->pipeline()) << "), " << tokens.getValue()
     << llvm::format(" tokens, >= %g s per function\n", minSeconds);
  unsigned benched = 0;
  for (const FunctionInfo &f : p->functions()) {
    if (!function.empty() && f.name != function)
      continue;
    auto ins = randomInputs(*p, f, 0);
    if (!ins)
      return failWith(ins.error());
    // One untimed call: the cpu kernels are compiled and the weights prepared on first use.
    using Clock = std::chrono::steady_clock;
    auto t0 = Clock::now();
    if (auto y = p->call_all(f.name, *ins); !y)
      return failWith(y.error());
    double first = std::chrono::duration<double>(Clock::now() - t0).count();
    uint64_t calls = 0;
    double elapsed = 0;
    t0 = Clock::now();
    while (calls < 3 || elapsed < minSeconds) {
      if (auto y = p->call_all(f.name, *ins); !y)
        return failWith(y.error());
      ++calls;
      elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
    }
    double perCall = elapsed / double(calls);
    os << "  @" << llvm::left_justify(f.name, 28)
       << llvm::format("%10.4f ms/call %12.0f tokens/s  first call %.3f ms  (%llu calls)\n",
                       perCall * 1e3, double(tokens.getValue()) / perCall, first * 1e3,
                       (unsigned long long)calls);
    ++benched;
  }
  if (!benched)
    return fail("no function @" + function + " in " + model);
  return 0;
}
