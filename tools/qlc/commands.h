// What qlc.cpp (the driver's entry, inspect/import/dequant/export) shares with
// program_commands.cpp (compile, run: the runtime API).
#pragma once
#include <string>

#include "llvm/Support/CommandLine.h"

namespace qlc::driver {

extern llvm::cl::OptionCategory qlcCat;
extern llvm::cl::SubCommand runCmd, compileCmd, benchCmd;
extern llvm::cl::opt<std::string> modelPath, outputPath, target;
extern llvm::cl::opt<bool> quiet;

int fail(const llvm::Twine &msg);
std::string humanBytes(uint64_t b);

int runRun();
/// `qlc bench MODEL`: times every function (or --function) of a compiled model or program.
int runBenchModel(llvm::StringRef model, double minSeconds);
int runCompile();
/// compile --emit=llvm|asm: print the kernels (qlc.cpp).
int runEmitKernels();

} // namespace qlc::driver
