#include "io/npy.h"

#include <cstring>

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/raw_ostream.h"

namespace qlc::io {

static llvm::Error err(const llvm::Twine &msg) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), msg);
}

llvm::Error writeNpy(llvm::StringRef path, llvm::StringRef descr, const std::vector<int64_t> &shape,
                     const void *data, size_t bytes) {
  std::string dict = "{'descr': '" + descr.str() + "', 'fortran_order': False, 'shape': (";
  for (size_t i = 0; i < shape.size(); ++i)
    dict += std::to_string(shape[i]) + (shape.size() == 1 || i + 1 < shape.size() ? "," : "") +
            (i + 1 < shape.size() ? " " : "");
  dict += "), }";
  // Magic (6) + version (2) + header length (2) + header, padded with spaces to 64 bytes, '\n'.
  size_t total = 10 + dict.size() + 1;
  dict.append((64 - total % 64) % 64, ' ');
  dict += '\n';
  std::error_code ec;
  llvm::raw_fd_ostream os(path, ec, llvm::sys::fs::OF_None);
  if (ec)
    return err(path + ": cannot write: " + ec.message());
  os << "\x93NUMPY" << char(1) << char(0);
  uint16_t hl = uint16_t(dict.size());
  os << char(hl & 0xFF) << char(hl >> 8) << dict;
  os.write(static_cast<const char *>(data), bytes);
  os.close();
  if (os.has_error())
    return err(path + ": write failed");
  return llvm::Error::success();
}

static size_t descrSize(llvm::StringRef d) {
  if (d.size() != 3 || (d[0] != '<' && d[0] != '|'))
    return 0;
  if (d == "<f4" || d == "<i4" || d == "<u4") return 4;
  if (d == "<f2" || d == "<i2" || d == "<u2") return 2;
  if (d == "<i8" || d == "<f8" || d == "<u8") return 8;
  if (d == "|i1" || d == "|u1" || d == "|b1") return 1;
  return 0;
}

llvm::Expected<NpyArray> readNpy(llvm::StringRef path) {
  auto buf = llvm::MemoryBuffer::getFile(path, false, false);
  if (!buf)
    return err(path + ": cannot open: " + buf.getError().message());
  llvm::StringRef b = (*buf)->getBuffer();
  if (b.size() < 10 || !b.starts_with("\x93NUMPY"))
    return err(path + ": not a .npy file (bad magic)");
  uint8_t major = uint8_t(b[6]);
  size_t hlen, hstart;
  if (major == 1) {
    hlen = uint8_t(b[8]) | size_t(uint8_t(b[9])) << 8;
    hstart = 10;
  } else if (major == 2 || major == 3) {
    if (b.size() < 12)
      return err(path + ": truncated header");
    hlen = uint8_t(b[8]) | size_t(uint8_t(b[9])) << 8 | size_t(uint8_t(b[10])) << 16 |
           size_t(uint8_t(b[11])) << 24;
    hstart = 12;
  } else {
    return err(path + ": unsupported .npy version " + llvm::Twine(major));
  }
  if (hlen > b.size() - hstart)
    return err(path + ": header length " + llvm::Twine(hlen) + " runs past the end of the file");
  llvm::StringRef h = b.substr(hstart, hlen);
  NpyArray a;
  auto field = [&](llvm::StringRef key) -> llvm::StringRef {
    size_t at = h.find((llvm::Twine("'") + key + "'").str());
    if (at == llvm::StringRef::npos)
      return {};
    llvm::StringRef rest = h.substr(at + key.size() + 2).ltrim();
    if (!rest.consume_front(":"))
      return {};
    return rest.ltrim();
  };
  llvm::StringRef d = field("descr");
  if (!d.consume_front("'"))
    return err(path + ": header has no 'descr'");
  a.descr = d.take_until([](char c) { return c == '\''; }).str();
  size_t esize = descrSize(a.descr);
  if (!esize)
    return err(path + ": unsupported dtype '" + a.descr + "' (little-endian numbers only)");
  if (!field("fortran_order").starts_with("False"))
    return err(path + ": Fortran-order arrays are not supported");
  llvm::StringRef s = field("shape");
  if (!s.consume_front("("))
    return err(path + ": header has no 'shape'");
  s = s.take_until([](char c) { return c == ')'; });
  uint64_t count = 1;
  while (!(s = s.ltrim(" ,")).empty()) {
    llvm::StringRef num = s.take_while([](char c) { return c >= '0' && c <= '9'; });
    int64_t dim;
    if (num.empty() || num.getAsInteger(10, dim))
      return err(path + ": malformed shape");
    if (__builtin_mul_overflow(count, uint64_t(dim), &count))
      return err(path + ": shape overflows");
    a.shape.push_back(dim);
    s = s.drop_front(num.size());
  }
  uint64_t bytes;
  if (__builtin_mul_overflow(count, uint64_t(esize), &bytes) || bytes != b.size() - hstart - hlen)
    return err(path + ": data has " + llvm::Twine(b.size() - hstart - hlen) + " bytes, shape needs " +
               llvm::Twine(count * esize));
  a.data.assign(b.bytes_begin() + hstart + hlen, b.bytes_end());
  return a;
}

} // namespace qlc::io
