#include <mutex>

#include "passes/pass.h"

namespace qlc {

void registerVerifyPass();
void registerCanonicalizePass();
void registerDcePass();

void registerGenericPasses() {
  static std::once_flag once;
  std::call_once(once, [] {
    registerVerifyPass();
    registerCanonicalizePass();
    registerDcePass();
  });
}

} // namespace qlc
