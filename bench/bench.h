// qlc-bench (`build/bin/qlc-bench`, `qlc bench`): in one process, the machine's streaming read
// bandwidth, Eigen fp32 GEMV / GEMM on dequantized weights, and qlc's JIT kernels (Q4_0, Q4_K,
// AWQ and GPTQ 4-bit, int8 and f32 activations) on the shapes, a whole MLP decode step and Mixtral / Qwen3-MoE layers; prints
// GFLOP/s, effective weight GB/s, the ratios to bandwidth and Eigen, and JIT compile times.
// See docs/performance.md.
#pragma once
#include <string>

namespace qlc::bench {

struct BenchOptions {
  bool quick = false;      ///< a small smoke subset (seconds, not minutes)
  std::string json;        ///< write the results as JSON here ("" = no)
  std::string filter;      ///< only benchmarks whose name matches this regex
  double minTime = 0.5;    ///< Google Benchmark's min time per benchmark, seconds
};

/// Runs the benchmarks and prints the report to stdout; returns a process exit code.
int runBench(const BenchOptions &opts);

} // namespace qlc::bench
