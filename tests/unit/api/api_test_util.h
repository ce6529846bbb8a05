// Helpers of the runtime API tests: generated checkpoints, random inputs, error measures.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <unistd.h>

#include "qlc/runtime.h"

namespace qlc::api_test {

/// A fresh folder under the test temp dir.
inline std::string freshDir(const std::string &name) {
  std::filesystem::path p = std::filesystem::path(::testing::TempDir()) /
                            ("qlc-api-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p.string();
}

/// A checkpoint written by tools/qlc-make-checkpoint `args`, shared by the tests (ctest runs each
/// in its own process, in parallel): written to a private folder, then renamed into place, so a
/// reader never sees a half-written one.
inline std::string makeCheckpoint(const std::string &name, const std::string &args) {
  namespace fs = std::filesystem;
  // Keyed by the generator's build time too: a rebuilt generator never meets a stale checkpoint.
  auto built = fs::last_write_time(QLC_MAKE_CHECKPOINT).time_since_epoch().count();
  fs::path dir = fs::path(::testing::TempDir()) /
                 ("qlc-api-ckpt-" + name + "-" + std::to_string(uint64_t(built)));
  if (fs::exists(dir / "config.json"))
    return dir.string();
  fs::path tmp = dir.string() + ".tmp" + std::to_string(::getpid());
  fs::remove_all(tmp);
  std::string cmd = std::string(QLC_MAKE_CHECKPOINT) + " " + args + " -o " + tmp.string() + " > /dev/null";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::error_code ec;
  fs::rename(tmp, dir, ec); // fails when another process got there first: use theirs
  fs::remove_all(tmp, ec);
  return dir.string();
}

/// Inputs for `f`: `tokens` rows for dynamic dims; floats N(0, 1), integer ids below 16.
inline std::vector<HostTensor> randomInputs(const FunctionInfo &f, int64_t tokens, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<HostTensor> ins;
  for (const TensorSpec &a : f.arguments) {
    std::vector<int64_t> shape;
    int64_t n = 1;
    for (int64_t d : a.shape)
      shape.push_back(d < 0 ? tokens : d), n *= shape.back();
    std::vector<float> v(size_t(n), 0.0f);
    bool isFloat = a.dtype == DataType::f32 || a.dtype == DataType::f16 || a.dtype == DataType::bf16;
    for (float &x : v)
      x = isFloat ? std::normal_distribution<float>(0, 1)(rng)
                  : float(std::uniform_int_distribution<int>(0, 15)(rng));
    ins.push_back(HostTensor::from_f32(shape, v, a.dtype));
  }
  return ins;
}

/// max|a - b| / max|b| (the measure of tests/lit/fixtures/Inputs/npy_close.py); +inf on a shape
/// mismatch or a NaN.
inline double relError(const HostTensor &a, const HostTensor &b) {
  if (a.shape() != b.shape())
    return INFINITY;
  std::vector<float> x = a.to_f32(), y = b.to_f32();
  double diff = 0, mx = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    if (std::isnan(x[i]) || std::isnan(y[i]))
      return INFINITY;
    diff = std::max(diff, double(std::fabs(x[i] - y[i])));
    mx = std::max(mx, double(std::fabs(y[i])));
  }
  return mx > 0 ? diff / mx : diff;
}

} // namespace qlc::api_test
