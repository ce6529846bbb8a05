// Compiles a checkpoint for a target, calls its first block on random activations and compares
// the result with the reference executor. Usage: compile_and_call MODEL [cpu|npu-emu]
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include <qlc/runtime.h>

int main(int argc, char **argv) {
  if (argc < 2)
    return std::fprintf(stderr, "usage: %s MODEL [cpu|npu-emu]\n", argv[0]), 2;
  qlc::Expected<qlc::Target> target = qlc::Target::parse(argc > 2 ? argv[2] : "cpu");
  if (!target)
    return std::fprintf(stderr, "%s\n", target.error().message().c_str()), 2;
  qlc::Expected<qlc::Program> p = qlc::Runtime(*target).compile_checkpoint(argv[1]);
  qlc::Expected<qlc::Program> ref = qlc::Runtime(qlc::Target::reference()).compile_checkpoint(argv[1]);
  if (!p || !ref)
    return std::fprintf(stderr, "%s\n", (!p ? p : ref).error().str().c_str()), 1;
  qlc::FunctionInfo f = p->functions().at(0).name == "embed" ? p->functions().at(1) : p->functions().at(0);
  std::vector<float> x(4 * size_t(f.arguments.at(0).shape.back()));  // 4 tokens x hidden
  std::mt19937 rng(1);
  for (float &v : x)
    v = std::normal_distribution<float>(0, 1)(rng);
  qlc::HostTensor in = qlc::HostTensor::from_f32({4, f.arguments[0].shape.back()}, x);
  qlc::Expected<qlc::HostTensor> y = p->call(f.name, {in}), yr = ref->call(f.name, {in});
  if (!y || !yr)
    return std::fprintf(stderr, "%s\n", (!y ? y : yr).error().message().c_str()), 1;
  std::vector<float> a = y->to_f32(), b = yr->to_f32();
  double err = 0, mx = 0;
  for (size_t i = 0; i < a.size(); ++i)
    err = std::max(err, double(std::fabs(a[i] - b[i]))), mx = std::max(mx, double(std::fabs(b[i])));
  std::printf("qlc %s: @%s on %s: %s, max|y| %.4g, max abs err vs reference %.3g\n", qlc::version(),
              f.name.c_str(), target->name(), y->type_str().c_str(), mx, err);
  return err <= 5e-2 * mx ? 0 : 1; // the loosest device bound of docs/runtime.md
}
