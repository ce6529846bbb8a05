// The npu scheme folder: Ascend NPU weight types, npu.* ops with their reference semantics, and
// the npu-layout-rewrite pass (FORMATS.md §5).
#include "schemes/npu/npu_internal.h"

namespace qlc::schemes {

void register_npu() {
  registerNpuTypes();
  registerNpuOps();
  registerNpuReferenceOps();
  registerNpuLayoutRewritePass();
}

} // namespace qlc::schemes
