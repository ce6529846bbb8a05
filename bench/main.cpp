// qlc-bench: see bench/bench.h and docs/performance.md.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "bench/bench.h"

int main(int argc, char **argv) {
  qlc::bench::BenchOptions o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--quick")
      o.quick = true;
    else if (a.rfind("--json=", 0) == 0)
      o.json = a.substr(7);
    else if (a.rfind("--filter=", 0) == 0)
      o.filter = a.substr(9);
    else if (a.rfind("--min-time=", 0) == 0)
      o.minTime = std::atof(a.c_str() + 11);
    else {
      std::fprintf(stderr,
                   "usage: qlc-bench [--quick] [--json=FILE] [--filter=REGEX] [--min-time=SEC]\n"
                   "  --quick     smoke subset: 4096x4096 at M = 1 and 64, Qwen3-MoE at 1 and 16\n"
                   "              tokens (about 30 s); the full run takes about 7 minutes\n");
      return a == "--help" || a == "-h" ? 0 : 2;
    }
  }
  return qlc::bench::runBench(o);
}
