// NumPy .npy files (format 1.0): what `qlc dequant` writes and `qlc run --input` reads.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

namespace qlc::io {

struct NpyArray {
  std::string descr; // "<f4", "<f2", "<i4", "<i8", ...
  std::vector<int64_t> shape;
  std::vector<uint8_t> data; // C order
};

llvm::Error writeNpy(llvm::StringRef path, llvm::StringRef descr, const std::vector<int64_t> &shape,
                     const void *data, size_t bytes);
/// Reads a little-endian, C-order .npy; every header field and the data size are checked.
llvm::Expected<NpyArray> readNpy(llvm::StringRef path);

} // namespace qlc::io
