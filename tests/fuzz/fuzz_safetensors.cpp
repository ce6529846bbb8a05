// Fuzz target: the safetensors reader (io/safetensors.cpp), on the bytes in memory (no copy, so
// ASan sees any read past them). A file that opens has every tensor view read whole; it is then
// written to a scratch folder as model.safetensors and imported (dense or by tensor names),
// verified and dequantized, as `qlc inspect`/`dequant` would.
#include "fuzz_common.h"
#include "io/safetensors.h"

using namespace qlc;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  auto buf = llvm::MemoryBuffer::getMemBuffer(
      llvm::StringRef(reinterpret_cast<const char *>(data), size), "fuzz.safetensors",
      /*RequiresNullTerminator=*/false);
  auto f = io::SafetensorsFile::openBuffer(std::move(buf), "fuzz.safetensors");
  if (!fuzz::ok(f))
    return 0;
  uint64_t total = 0;
  unsigned sum = 0;
  for (const io::TensorView &t : (*f)->tensors()) {
    if (t.numElements() * int64_t(io::dtypeSize(t.dtype)) != int64_t(t.data.size()))
      std::abort(); // the reader promised size == dtype x shape
    for (uint8_t b : t.data)
      sum += b;
    total += t.data.size();
  }
  if (total != (*f)->dataBytes())
    std::abort(); // the reader promised the tensors tile the data area
  volatile unsigned sink = sum;
  (void)sink;
  static const std::string dir = fuzz::scratchPath("st");
  llvm::sys::fs::create_directories(dir);
  fuzz::writeFile(dir + "/model.safetensors", data, size);
  fuzz::importVerifyDequant(dir);
  return 0;
}
