// Fuzz target: the GGUF reader (io/gguf.cpp), on the bytes in memory. A file that opens has every
// tensor's data read whole; it is then written to a scratch file and imported through the GGUF
// provider (schemes/gguf/gguf_import.cpp), verified, and every weight reference-dequantized with
// the block codecs (schemes/gguf/blocks.cpp).
#include "fuzz_common.h"
#include "io/gguf.h"

using namespace qlc;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  auto buf = llvm::MemoryBuffer::getMemBuffer(
      llvm::StringRef(reinterpret_cast<const char *>(data), size), "fuzz.gguf",
      /*RequiresNullTerminator=*/false);
  auto f = io::GgufFile::openBuffer(std::move(buf), "fuzz.gguf");
  if (!fuzz::ok(f))
    return 0;
  unsigned sum = 0;
  for (const io::GgufTensorInfo &t : (*f)->tensors())
    for (uint8_t b : t.data)
      sum += b;
  for (const auto &[k, v] : (*f)->metadata())
    sum += unsigned(k.size()) + unsigned(v.asString().value_or("").size());
  volatile unsigned sink = sum;
  (void)sink;
  static const std::string path = fuzz::scratchPath("model.gguf");
  fuzz::writeFile(path, data, size);
  fuzz::importVerifyDequant(path);
  return 0;
}
