// Helpers shared by the io unit tests: temp folders, raw byte building, error text.
#pragma once
#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace qlc::io::test {

/// A fresh folder under the system temp dir, removed with everything in it at scope exit.
class TempDir {
public:
  TempDir() {
    std::error_code ec = llvm::sys::fs::createUniqueDirectory("qlc-io-test", path_);
    EXPECT_FALSE(ec) << ec.message();
  }
  ~TempDir() { llvm::sys::fs::remove_directories(path_); }
  std::string path() const { return std::string(path_); }
  std::string file(llvm::StringRef name) const {
    llvm::SmallString<256> p(path_);
    llvm::sys::path::append(p, name);
    return std::string(p);
  }

private:
  llvm::SmallString<256> path_;
};

inline void writeBytes(const std::string &path, const std::vector<uint8_t> &bytes) {
  std::error_code ec;
  llvm::raw_fd_ostream os(path, ec, llvm::sys::fs::OF_None);
  ASSERT_FALSE(ec) << ec.message();
  os.write(reinterpret_cast<const char *>(bytes.data()), bytes.size());
}

inline void writeText(const std::string &path, llvm::StringRef text) {
  std::error_code ec;
  llvm::raw_fd_ostream os(path, ec, llvm::sys::fs::OF_None);
  ASSERT_FALSE(ec) << ec.message();
  os << text;
}

inline std::vector<uint8_t> readBytes(const std::string &path) {
  std::vector<uint8_t> out;
  FILE *f = fopen(path.c_str(), "rb");
  if (!f)
    return out;
  uint8_t buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0)
    out.insert(out.end(), buf, buf + n);
  fclose(f);
  return out;
}

/// Little-endian byte building for crafting (malformed) files by hand.
class Bytes {
public:
  template <class T> Bytes &put(T x) {
    uint8_t b[sizeof(T)];
    std::memcpy(b, &x, sizeof(T));
    v.insert(v.end(), b, b + sizeof(T));
    return *this;
  }
  Bytes &u8(uint8_t x) { return put(x); }
  Bytes &u32(uint32_t x) { return put(x); }
  Bytes &i32(int32_t x) { return put(x); }
  Bytes &u64(uint64_t x) { return put(x); }
  Bytes &i64(int64_t x) { return put(x); }
  Bytes &raw(llvm::StringRef s) {
    v.insert(v.end(), s.begin(), s.end());
    return *this;
  }
  Bytes &str(llvm::StringRef s) { return u64(s.size()).raw(s); } // GGUF string
  Bytes &append(const Bytes &o) {
    v.insert(v.end(), o.v.begin(), o.v.end());
    return *this;
  }
  Bytes &zeros(size_t n) {
    v.insert(v.end(), n, 0);
    return *this;
  }
  Bytes &padTo(size_t align) {
    while (v.size() % align)
      v.push_back(0);
    return *this;
  }
  size_t size() const { return v.size(); }
  std::vector<uint8_t> v;
};

template <class T> std::string errorText(llvm::Expected<T> &e) {
  return e ? std::string("<no error>") : llvm::toString(e.takeError());
}
inline std::string errorText(llvm::Error e) {
  return e ? llvm::toString(std::move(e)) : std::string("<no error>");
}

} // namespace qlc::io::test
