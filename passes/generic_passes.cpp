#include <mutex>

#include "passes/pass.h"

namespace qlc {

void registerVerifyPass();
void registerCanonicalizePass();
void registerDcePass();
void registerMaterializeExpertsPass();
void registerDequantizeWeightsPass();
void registerFuseDequantPass();
void registerCpuOps();

void registerGenericPasses() {
  static std::once_flag once;
  std::call_once(once, [] {
    registerVerifyPass();
    registerCanonicalizePass();
    registerDcePass();
    registerMaterializeExpertsPass();
    registerDequantizeWeightsPass();
    registerFuseDequantPass();
    registerCpuOps(); // so modules holding cpu.* ops parse
    PassRegistry::get().addPipeline(
        {"lower-cpu", "lower a model for the CPU backend (what qlc compile --target cpu runs)",
         "materialize-experts,fuse-dequant,canonicalize,dce"});
  });
}

} // namespace qlc
