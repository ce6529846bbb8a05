// Resource limits (docs/security.md, "Resource limits"): counts and sizes a hostile file declares
// are checked against the bytes it has before anything is allocated, so 10^12 tensors, a 2^62-byte
// array or a 2^62-element tensor fail at once with an error, in well under a second, and without
// the process growing. (The 10 GB sparse checkpoint that must be mapped, not read, is
// sparse_checkpoint_test.py.)
#include <chrono>
#include <cstring>
#include <string>
#include <sys/resource.h>
#include <vector>

#include <gtest/gtest.h>

#include "llvm/Support/MemoryBuffer.h"

#include "io/gguf.h"
#include "io/safetensors.h"

using namespace qlc::io;

namespace {

struct Bytes {
  std::vector<uint8_t> b;
  template <class T> Bytes &put(T x) {
    const auto *p = reinterpret_cast<const uint8_t *>(&x);
    b.insert(b.end(), p, p + sizeof(T));
    return *this;
  }
  Bytes &str(const std::string &s) {
    put<uint64_t>(s.size());
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  Bytes &raw(const std::string &s) {
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  Bytes &pad(size_t align) {
    while (b.size() % align)
      b.push_back(0);
    return *this;
  }
};

long maxRssKb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

/// Opens `bytes` with `open` and expects an error containing `msg`, within 1 s, with the peak RSS
/// growing by less than 64 MiB.
template <class Open>
void expectFastError(const std::vector<uint8_t> &bytes, Open open, const std::string &msg) {
  long before = maxRssKb();
  auto t0 = std::chrono::steady_clock::now();
  auto buf = llvm::MemoryBuffer::getMemBuffer(
      llvm::StringRef(reinterpret_cast<const char *>(bytes.data()), bytes.size()), "hostile",
      /*RequiresNullTerminator=*/false);
  auto f = open(std::move(buf));
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_FALSE(bool(f)) << "a hostile file was accepted";
  std::string err = llvm::toString(f.takeError());
  EXPECT_NE(err.find(msg), std::string::npos) << err;
  EXPECT_LT(secs, 1.0);
  EXPECT_LT(maxRssKb() - before, 64 * 1024) << "peak RSS grew";
}

auto openGguf = [](std::unique_ptr<llvm::MemoryBuffer> b) {
  return GgufFile::openBuffer(std::move(b), "hostile.gguf");
};
auto openSt = [](std::unique_ptr<llvm::MemoryBuffer> b) {
  return SafetensorsFile::openBuffer(std::move(b), "hostile.safetensors");
};

Bytes ggufHeader(uint64_t nTensors, uint64_t nKV) {
  Bytes h;
  h.raw("GGUF").put<uint32_t>(3).put<uint64_t>(nTensors).put<uint64_t>(nKV);
  return h;
}

/// One tensor info `w` with dims `ne` and ggml type `type` at offset 0, then the padded blob.
std::vector<uint8_t> ggufOneTensor(std::vector<int64_t> ne, uint32_t type) {
  Bytes h = ggufHeader(1, 0);
  h.str("w").put<uint32_t>(uint32_t(ne.size()));
  for (int64_t d : ne)
    h.put<int64_t>(d);
  h.put<uint32_t>(type).put<uint64_t>(0).pad(32);
  h.b.resize(h.b.size() + 64, 0); // a few data bytes
  return h.b;
}

std::vector<uint8_t> safetensors(const std::string &header, size_t dataBytes) {
  Bytes b;
  b.put<uint64_t>(header.size()).raw(header);
  b.b.resize(b.b.size() + dataBytes, 0);
  return b.b;
}

} // namespace

TEST(ResourceLimits, GgufTenToTheTwelveTensors) {
  Bytes h = ggufHeader(1'000'000'000'000ull, 0);
  h.b.resize(h.b.size() + 64, 0);
  expectFastError(h.b, openGguf, "tensor count 1000000000000 cannot fit in the 64 bytes left");
}

TEST(ResourceLimits, GgufTenToTheTwelveKVs) {
  Bytes h = ggufHeader(0, 1'000'000'000'000ull);
  h.b.resize(h.b.size() + 64, 0);
  expectFastError(h.b, openGguf, "metadata KV count 1000000000000 cannot fit");
}

TEST(ResourceLimits, GgufArrayOfTwoToTheSixtyTwoElements) {
  Bytes h = ggufHeader(0, 1);
  h.str("a").put<uint32_t>(9 /*ARRAY*/).put<uint32_t>(0 /*U8*/).put<uint64_t>(uint64_t(1) << 62);
  h.b.resize(h.b.size() + 16, 0);
  expectFastError(h.b, openGguf, "array of 4611686018427387904 UINT8 elements cannot fit");
}

TEST(ResourceLimits, GgufTwoToTheSixtyTwoElementTensors) {
  // Q4_0 (2): 2^62 elements are 2^57 blocks of 18 bytes, which fits 64 bits: past the end.
  expectFastError(ggufOneTensor({int64_t(1) << 31, int64_t(1) << 31}, 2), openGguf,
                  "tensor 'w' data [0, +2594073385365405696) runs past the end of the file");
  // I8 (24): one 2^62-element dimension, 2^62 bytes.
  expectFastError(ggufOneTensor({int64_t(1) << 62}, 24), openGguf,
                  "tensor 'w' data [0, +4611686018427387904) runs past the end of the file");
  // F32: 2^64 bytes overflow.
  expectFastError(ggufOneTensor({int64_t(1) << 62}, 0), openGguf, "overflows");
  expectFastError(ggufOneTensor({1 << 16, 1 << 16, 1 << 16, 1 << 14}, 0), openGguf, "overflows");
}

TEST(ResourceLimits, SafetensorsTwoToTheSixtyTwoElementTensors) {
  expectFastError(
      safetensors(R"({"w":{"dtype":"U8","shape":[4611686018427387904],)"
                  R"("data_offsets":[0,4611686018427387904]}})",
                  64),
      openSt, "data_offsets [0, 4611686018427387904) lie outside the data area of 64 bytes");
  expectFastError(
      safetensors(R"({"w":{"dtype":"BOOL","shape":[2147483648,2147483648],)"
                  R"("data_offsets":[0,4611686018427387904]}})",
                  8),
      openSt, "lie outside the data area of 8 bytes");
  expectFastError(
      safetensors(R"({"w":{"dtype":"F32","shape":[2147483648,2147483648],)"
                  R"("data_offsets":[0,4]}})",
                  4),
      openSt, "byte size of the shape overflows");
}

TEST(ResourceLimits, SafetensorsHugeHeaderLength) {
  Bytes b;
  b.put<uint64_t>(uint64_t(1) << 62).raw("{}");
  expectFastError(b.b, openSt, "exceeds the 100 MB limit");
}
