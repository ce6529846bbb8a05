// qlc-opt: parse a .qir module, run a pass pipeline, print the result. The FileCheck workhorse, as
// mlir-opt is for MLIR.
#include "llvm/Pass.h" // llvm::TimePassesIsEnabled, set by LLVM's own -time-passes
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/raw_ostream.h"

#include "expected_diagnostics.h"
#include "ir/diagnostics.h"
#include "ir/ir.h"
#include "ir/op_registry.h"
#include "ir/parser.h"
#include "ir/printer.h"
#include "ir/verifier.h"
#include "passes/pass_manager.h"
#include "runtime/weight_store.h"
#include "schemes/all_schemes.h"

using namespace qlc;
namespace cl = llvm::cl;

static cl::OptionCategory cat("qlc-opt options");
static cl::opt<std::string> inputFile(cl::Positional, cl::desc("<input .qir file, or - for stdin>"),
                                      cl::init("-"), cl::cat(cat));
static cl::opt<std::string> outputFile("o", cl::desc("Output file (default: stdout)"),
                                       cl::value_desc("file"), cl::init("-"), cl::cat(cat));
static cl::opt<std::string> passPipeline(
    "passes", cl::desc("Pass pipeline, e.g. canonicalize,dce or dequantize-weights{dtype=f16}"),
    cl::value_desc("pipeline"), cl::init(""), cl::cat(cat));
static cl::opt<bool> splitInputFile("split-input-file",
                                    cl::desc("Process each '// -----' separated chunk on its own"),
                                    cl::cat(cat));
static cl::opt<bool> verifyDiagnostics(
    "verify-diagnostics",
    cl::desc("Check diagnostics against expected-error/warning/note/remark comments"), cl::cat(cat));
static cl::opt<bool> verifyEach("verify-each", cl::desc("Verify the module after every pass"),
                                cl::init(true), cl::cat(cat));
static cl::opt<bool> printAfterAll("print-ir-after-all", cl::desc("Print the IR after every pass"),
                                   cl::cat(cat));
static cl::list<std::string> printAfter("print-ir-after",
                                        cl::desc("Print the IR after the named pass"),
                                        cl::value_desc("pass"), cl::cat(cat));
static cl::opt<bool> passStatistics("pass-statistics", cl::desc("Report pass statistics"),
                                    cl::cat(cat));
static cl::opt<bool> listPasses("list-passes",
                                cl::desc("List the registered passes and pipelines, then exit"),
                                cl::cat(cat));
static cl::opt<bool> listOps("list-ops",
                             cl::desc("List the registered ops and weight types, then exit"),
                             cl::cat(cat));
static cl::opt<bool> printLocations("print-locations",
                                    cl::desc("Print loc(\"file\":line:col) after ops and weights"),
                                    cl::cat(cat));

static void printPassList(llvm::raw_ostream &os) {
  os << "Passes:\n";
  for (const PassInfo *p : PassRegistry::get().passes()) {
    os << "  " << p->name << " - " << p->summary << "\n";
    for (const PassOptionSpec &o : p->options) {
      os << "      " << o.name << "=<" << passOptionKindName(o.kind);
      if (!o.choices.empty()) {
        os << ":";
        for (size_t i = 0; i < o.choices.size(); ++i)
          os << (i ? "|" : "") << o.choices[i];
      }
      os << "> (default " << o.defaultValue << ") - " << o.description << "\n";
    }
  }
  os << "Pipelines:\n";
  for (const PipelineInfo *p : PassRegistry::get().pipelines())
    os << "  " << p->name << " - " << p->summary << "\n      = " << p->pipeline << "\n";
}

static void printOpList(llvm::raw_ostream &os) {
  os << "Ops:\n";
  for (const OpDef *d : OpRegistry::get().all()) {
    os << "  " << d->name << " - " << d->summary << "\n      " << d->syntax << "\n";
    for (const AttrSpec &a : d->attrs)
      os << "      {" << a.name << " : " << attrKindName(a.kind)
         << (a.defaultValue ? " = " + a.defaultValue->str() : std::string(", required")) << "} "
         << a.doc << "\n";
  }
  os << "Weight types:\n";
  for (const WeightTypeDef *d : WeightTypeRegistry::get().all()) {
    os << "  !" << d->mnemonic << " - " << d->summary << "\n";
    for (const ParamSpec &p : d->params)
      os << "      " << p.name << " : " << attrKindName(p.kind)
         << (p.defaultValue ? " = " + p.defaultValue->str() : std::string(", required")) << " - "
         << p.doc << "\n";
  }
}

/// Processes one chunk: parse, verify, run the pipeline, print. Returns true on success (with
/// --verify-diagnostics: when the diagnostics matched the expectations).
static bool processChunk(const std::string &text, const std::string &name, llvm::raw_ostream &out) {
  llvm::SourceMgr sm;
  DiagnosticEngine diag(&sm);
  std::unique_ptr<ExpectedDiagnostics> expected;
  DiagnosticEngine checkDiag(&sm); // prints mismatches
  if (verifyDiagnostics) {
    expected = std::make_unique<ExpectedDiagnostics>(text, name, checkDiag);
    diag.setHandler([&](const Diagnostic &d) { expected->record(d); });
  }
  unsigned id =
      sm.AddNewSourceBuffer(llvm::MemoryBuffer::getMemBufferCopy(text, name), llvm::SMLoc());
  bool ok = true;
  std::unique_ptr<Module> m = parseModule(sm, id, diag);
  if (!m || llvm::failed(verifyModule(*m, diag))) {
    ok = false;
  } else {
    PassManagerOptions pmo;
    pmo.verifyEach = verifyEach;
    pmo.printAfterAll = printAfterAll;
    pmo.printAfter.insert(printAfter.begin(), printAfter.end());
    pmo.timePasses = llvm::TimePassesIsEnabled;
    pmo.statistics = passStatistics;
    pmo.printLocations = printLocations;
    // Passes that rewrite weights read `from "..."` parts from the module's checkpoint, opened on
    // first use.
    std::unique_ptr<WeightStore> store;
    PassContext ctx{diag, [&]() -> llvm::Expected<const WeightStore *> {
                      if (!store) {
                        auto s = WeightStore::openForModule(*m, name == "<stdin>" ? "" : name);
                        if (!s)
                          return s.takeError();
                        store = std::move(*s);
                      }
                      return store.get();
                    }};
    PassManager pm(ctx, pmo);
    std::string err = pm.addPipeline(passPipeline);
    if (!err.empty()) {
      llvm::errs() << "qlc-opt: error: " << err << "\n";
      return false;
    }
    if (llvm::failed(pm.run(*m))) {
      ok = false;
    } else {
      PrintOptions po;
      po.locations = printLocations;
      printModule(*m, out, po);
    }
  }
  if (verifyDiagnostics)
    return expected->check(checkDiag) && checkDiag.numErrors() == 0;
  return ok;
}

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  registerCoreOps();
  registerGenericPasses();
  schemes::registerAllSchemes();
  // -time-passes is LLVM's own option (libLLVM registers it); qlc-opt reads its value.
  if (auto *tp = cl::getRegisteredOptions().lookup("time-passes")) {
    tp->addCategory(cat);
    tp->setDescription("Report the time each pass takes");
    tp->setHiddenFlag(cl::NotHidden);
  }
  cl::HideUnrelatedOptions(cat);
  cl::ParseCommandLineOptions(argc, argv, "qlc-opt: run qlc passes on a .qir module\n");

  if (listPasses || listOps) {
    if (listPasses)
      printPassList(llvm::outs());
    if (listOps)
      printOpList(llvm::outs());
    return 0;
  }

  for (const std::string &name : printAfter)
    if (!PassRegistry::get().lookup(name)) {
      llvm::errs() << "qlc-opt: error: --print-ir-after names unknown pass '" << name
                   << "' (see --list-passes)\n";
      return 1;
    }

  auto bufOrErr = llvm::MemoryBuffer::getFileOrSTDIN(inputFile, /*IsText=*/true);
  if (std::error_code ec = bufOrErr.getError()) {
    llvm::errs() << "qlc-opt: error: cannot open '" << inputFile << "': " << ec.message() << "\n";
    return 1;
  }
  std::string name = inputFile == "-" ? "<stdin>" : inputFile.getValue();
  llvm::StringRef text = (*bufOrErr)->getBuffer();

  std::error_code ec;
  llvm::ToolOutputFile output(outputFile, ec, llvm::sys::fs::OF_Text);
  if (ec) {
    llvm::errs() << "qlc-opt: error: cannot write '" << outputFile << "': " << ec.message() << "\n";
    return 1;
  }

  // Chunk boundaries: lines that are exactly "// -----" (surrounding blanks allowed).
  std::vector<std::pair<size_t, size_t>> chunks;
  if (splitInputFile) {
    size_t start = 0, pos = 0;
    while (pos <= text.size()) {
      size_t eol = text.find('\n', pos);
      if (eol == llvm::StringRef::npos)
        eol = text.size();
      if (text.substr(pos, eol - pos).trim() == "// -----") {
        chunks.push_back({start, pos});
        start = eol + 1;
      }
      pos = eol + 1;
    }
    chunks.push_back({std::min(start, text.size()), text.size()});
  } else {
    chunks.push_back({0, text.size()});
  }

  bool ok = true;
  for (size_t c = 0; c < chunks.size(); ++c) {
    // Blank out the chunks before this one (keeping newlines) so line numbers are those of the
    // file, and end the buffer where the chunk ends so an end-of-file error points there.
    std::string chunkText(text.begin(), text.begin() + chunks[c].second);
    for (size_t i = 0; i < chunks[c].first; ++i)
      if (chunkText[i] != '\n')
        chunkText[i] = ' ';
    if (c)
      output.os() << "// -----\n";
    ok &= processChunk(chunkText, name, output.os());
  }
  if (!ok)
    return 1; // the output file is removed (as mlir-opt does): a failed run writes nothing
  output.keep();
  return 0;
}
