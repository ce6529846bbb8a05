#include "io/safetensors.h"
#include "support/float16.h"
#include "test_util.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <numeric>
#include <random>

using namespace qlc::io;
using namespace qlc::io::test;
using ::testing::HasSubstr;

namespace {

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i)
    v[i] = uint8_t(seed + i * 7);
  return v;
}

size_t bytesOf(DType t, const std::vector<int64_t> &shape) {
  size_t n = 1;
  for (int64_t d : shape)
    n *= size_t(d);
  return n * dtypeSize(t);
}

const DType kAllDTypes[] = {DType::F64, DType::F32, DType::F16, DType::BF16, DType::I64,
                            DType::I32, DType::I16, DType::I8,  DType::U64,  DType::U32,
                            DType::U16, DType::U8,  DType::Bool};

} // namespace

TEST(Safetensors, RoundTripEveryDTypeAndOddShapes) {
  TempDir dir;
  SafetensorsWriter w;
  struct Added {
    std::string name;
    DType dt;
    std::vector<int64_t> shape;
    std::vector<uint8_t> bytes;
  };
  std::vector<Added> added;
  const std::vector<std::vector<int64_t>> shapes = {{}, {3}, {2, 3, 5}, {0}, {4, 0, 2}, {1, 1, 7}};
  uint8_t seed = 1;
  for (DType t : kAllDTypes)
    for (size_t s = 0; s < shapes.size(); ++s) {
      Added a{safetensorsName(t).str() + "." + std::to_string(s), t, shapes[s],
              pattern(bytesOf(t, shapes[s]), seed++)};
      if (t == DType::Bool)
        for (uint8_t &b : a.bytes)
          b &= 1;
      w.add(a.name, a.dt, a.shape, a.bytes);
      added.push_back(std::move(a));
    }
  w.setMetadata("format", "pt");
  w.setMetadata("producer", "qlc \"test\"");
  std::string path = dir.file("all.safetensors");
  ASSERT_FALSE(w.write(path)) << "write failed";

  // The header is space-padded so the data area is 8-byte aligned.
  std::vector<uint8_t> raw = readBytes(path);
  uint64_t n;
  std::memcpy(&n, raw.data(), 8);
  EXPECT_EQ(n % 8, 0u);

  auto f = SafetensorsFile::open(path);
  ASSERT_TRUE(bool(f)) << errorText(f);
  EXPECT_EQ((*f)->path(), path);
  EXPECT_EQ((*f)->tensors().size(), added.size());
  EXPECT_EQ((*f)->metadata().at("format"), "pt");
  EXPECT_EQ((*f)->metadata().at("producer"), "qlc \"test\"");
  for (const Added &a : added) {
    const TensorView *t = (*f)->find(a.name);
    ASSERT_NE(t, nullptr) << a.name;
    EXPECT_EQ(t->dtype, a.dt);
    EXPECT_EQ(t->shape, a.shape);
    EXPECT_EQ(std::vector<uint8_t>(t->data.begin(), t->data.end()), a.bytes) << a.name;
    int64_t count = 1;
    for (int64_t d : a.shape)
      count *= d;
    EXPECT_EQ(t->numElements(), count);
  }
  // tensors() is in file (offset) order, which is insertion order for our writer.
  uint64_t prevEnd = 0;
  for (const TensorView &t : (*f)->tensors()) {
    uint64_t begin = t.data.data() - (*f)->tensors().front().data.data();
    EXPECT_EQ(begin, prevEnd) << t.name;
    prevEnd = begin + t.data.size();
  }
  EXPECT_EQ((*f)->find("nope"), nullptr);
}

TEST(Safetensors, ValuesSurviveF16AndBF16) {
  TempDir dir;
  std::vector<uint16_t> h = {qlc::floatToHalf(1.5f), qlc::floatToHalf(-0.25f)};
  std::vector<uint16_t> b = {qlc::floatToBf16(3.0f), qlc::floatToBf16(-7.5f)};
  SafetensorsWriter w;
  w.add("h", DType::F16, {2}, {reinterpret_cast<uint8_t *>(h.data()), 4});
  w.add("b", DType::BF16, {2}, {reinterpret_cast<uint8_t *>(b.data()), 4});
  ASSERT_FALSE(w.write(dir.file("x.safetensors")));
  auto f = SafetensorsFile::open(dir.file("x.safetensors"));
  ASSERT_TRUE(bool(f)) << errorText(f);
  const uint16_t *hp = reinterpret_cast<const uint16_t *>((*f)->find("h")->data.data());
  const uint16_t *bp = reinterpret_cast<const uint16_t *>((*f)->find("b")->data.data());
  EXPECT_EQ(qlc::halfToFloat(hp[0]), 1.5f);
  EXPECT_EQ(qlc::halfToFloat(hp[1]), -0.25f);
  EXPECT_EQ(qlc::bf16ToFloat(bp[0]), 3.0f);
  EXPECT_EQ(qlc::bf16ToFloat(bp[1]), -7.5f);
}

TEST(Safetensors, EmptyFileRoundTrips) {
  TempDir dir;
  SafetensorsWriter w;
  ASSERT_FALSE(w.write(dir.file("e.safetensors")));
  auto f = SafetensorsFile::open(dir.file("e.safetensors"));
  ASSERT_TRUE(bool(f)) << errorText(f);
  EXPECT_TRUE((*f)->tensors().empty());
}

TEST(Safetensors, WriterRejectsBadInput) {
  TempDir dir;
  {
    SafetensorsWriter w;
    w.add("a", DType::F32, {3}, pattern(11, 0));
    EXPECT_THAT(errorText(w.write(dir.file("a.safetensors"))), HasSubstr("tensor 'a': has 11 bytes, shape and dtype need 12"));
  }
  {
    SafetensorsWriter w;
    w.add("a", DType::U8, {1}, pattern(1, 0));
    w.add("a", DType::U8, {1}, pattern(1, 0));
    EXPECT_THAT(errorText(w.write(dir.file("a.safetensors"))), HasSubstr("added twice"));
  }
}

TEST(Safetensors, ShardedWriteAndCheckpointRead) {
  TempDir dir;
  SafetensorsWriter w;
  std::map<std::string, std::vector<uint8_t>> expect;
  for (int i = 0; i < 10; ++i) {
    std::string name = "model.layers." + std::to_string(i) + ".weight";
    auto bytes = pattern(size_t(40 + 8 * i) * 4, uint8_t(i));
    w.add(name, DType::F32, {int64_t(40 + 8 * i)}, bytes);
    expect[name] = bytes;
  }
  w.add("scalar", DType::F64, {}, pattern(8, 99));
  expect["scalar"] = pattern(8, 99);
  w.setMetadata("format", "pt");
  std::string out = dir.file("sharded");
  ASSERT_FALSE(w.writeSharded(out, 600));

  auto ck = SafetensorsCheckpoint::open(out);
  ASSERT_TRUE(bool(ck)) << errorText(ck);
  EXPECT_GT((*ck)->files().size(), 2u);
  EXPECT_EQ((*ck)->directory(), out);
  ASSERT_EQ((*ck)->tensors().size(), expect.size());
  uint64_t total = 0;
  for (const auto &[name, bytes] : expect) {
    const TensorView *t = (*ck)->find(name);
    ASSERT_NE(t, nullptr) << name;
    EXPECT_EQ(std::vector<uint8_t>(t->data.begin(), t->data.end()), bytes);
    EXPECT_THAT((*ck)->fileOf(name).str(), HasSubstr("-of-0000"));
    total += bytes.size();
  }
  EXPECT_EQ((*ck)->totalBytes(), total);
  EXPECT_TRUE((*ck)->fileOf("missing").empty());
  // Sorted by name.
  for (size_t i = 1; i < (*ck)->tensors().size(); ++i)
    EXPECT_LT((*ck)->tensors()[i - 1]->name, (*ck)->tensors()[i]->name);
  // The index records the total size like transformers does.
  auto idx = readBytes(out + "/model.safetensors.index.json");
  std::string text(idx.begin(), idx.end());
  EXPECT_THAT(text, HasSubstr("\"total_size\": " + std::to_string(total)));
}

TEST(Safetensors, CheckpointLayouts) {
  TempDir dir;
  SafetensorsWriter w;
  w.add("a", DType::I8, {2}, pattern(2, 1));
  w.add("b", DType::I8, {3}, pattern(3, 2));

  // A single file given directly.
  ASSERT_FALSE(w.write(dir.file("single.safetensors")));
  auto c1 = SafetensorsCheckpoint::open(dir.file("single.safetensors"));
  ASSERT_TRUE(bool(c1)) << errorText(c1);
  EXPECT_EQ((*c1)->directory(), dir.path());
  EXPECT_EQ((*c1)->tensors().size(), 2u);

  // A folder with model.safetensors.
  llvm::sys::fs::create_directories(dir.file("m"));
  ASSERT_FALSE(w.write(dir.file("m/model.safetensors")));
  auto c2 = SafetensorsCheckpoint::open(dir.file("m"));
  ASSERT_TRUE(bool(c2)) << errorText(c2);
  EXPECT_EQ((*c2)->fileOf("b"), dir.file("m/model.safetensors"));

  // Fallback: arbitrary *.safetensors files, merged.
  llvm::sys::fs::create_directories(dir.file("f"));
  SafetensorsWriter w2;
  w2.add("c", DType::U16, {1}, pattern(2, 3));
  ASSERT_FALSE(w.write(dir.file("f/one.safetensors")));
  ASSERT_FALSE(w2.write(dir.file("f/two.safetensors")));
  auto c3 = SafetensorsCheckpoint::open(dir.file("f"));
  ASSERT_TRUE(bool(c3)) << errorText(c3);
  EXPECT_EQ((*c3)->tensors().size(), 3u);
  EXPECT_EQ((*c3)->fileOf("c"), dir.file("f/two.safetensors"));

  // Fallback with the same tensor in two files is an error.
  ASSERT_FALSE(w.write(dir.file("f/three.safetensors")));
  auto c4 = SafetensorsCheckpoint::open(dir.file("f"));
  EXPECT_THAT(errorText(c4), HasSubstr("is also in"));

  // An empty folder.
  llvm::sys::fs::create_directories(dir.file("empty"));
  auto c5 = SafetensorsCheckpoint::open(dir.file("empty"));
  EXPECT_THAT(errorText(c5), HasSubstr("no model.safetensors"));
}

TEST(Safetensors, IndexErrors) {
  TempDir dir;
  SafetensorsWriter w;
  w.add("a", DType::I8, {2}, pattern(2, 1));
  ASSERT_FALSE(w.writeSharded(dir.file("s"), 1000));

  // A tensor listed in weight_map but absent from its shard.
  writeText(dir.file("s/model.safetensors.index.json"),
            R"({"metadata":{},"weight_map":{"a":"model-00001-of-00001.safetensors",)"
            R"("ghost":"model-00001-of-00001.safetensors"}})");
  auto c = SafetensorsCheckpoint::open(dir.file("s"));
  EXPECT_THAT(errorText(c), HasSubstr("'ghost' is listed in weight_map but missing"));

  // A shard that does not exist.
  writeText(dir.file("s/model.safetensors.index.json"),
            R"({"weight_map":{"a":"model-00009-of-00009.safetensors"}})");
  c = SafetensorsCheckpoint::open(dir.file("s"));
  EXPECT_THAT(errorText(c), HasSubstr("model-00009-of-00009.safetensors: cannot open"));

  // Shard paths that leave the folder.
  writeText(dir.file("s/model.safetensors.index.json"),
            R"({"weight_map":{"a":"../x.safetensors"}})");
  c = SafetensorsCheckpoint::open(dir.file("s"));
  EXPECT_THAT(errorText(c), HasSubstr("invalid shard path"));

  // No weight_map.
  writeText(dir.file("s/model.safetensors.index.json"), R"({"metadata":{}})");
  c = SafetensorsCheckpoint::open(dir.file("s"));
  EXPECT_THAT(errorText(c), HasSubstr("missing 'weight_map'"));

  // Broken JSON names the index and the position.
  writeText(dir.file("s/model.safetensors.index.json"), "{\n\"weight_map\": [}");
  c = SafetensorsCheckpoint::open(dir.file("s"));
  EXPECT_THAT(errorText(c), HasSubstr("model.safetensors.index.json: invalid JSON: [2:"));
}

// ---------------------------------------------------------------------------------------------
// Malformed corpus

namespace {

/// u64 header length + header + `dataBytes` bytes of data.
std::vector<uint8_t> stFile(llvm::StringRef header, size_t dataBytes) {
  Bytes b;
  b.u64(header.size()).raw(header).zeros(dataBytes);
  return b.v;
}

struct MalformedSt {
  std::string name;
  std::function<std::vector<uint8_t>()> build;
  std::string expect;
};

std::ostream &operator<<(std::ostream &os, const MalformedSt &c) { return os << c.name; }

const MalformedSt kMalformedSt[] = {
    {"Empty", [] { return std::vector<uint8_t>{}; }, "too short for the 8-byte"},
    {"SevenBytes", [] { return std::vector<uint8_t>(7, 0); }, "7 bytes, too short"},
    {"HeaderPastEof", [] { return Bytes().u64(100).raw("{}").v; }, "runs past the end of the file"},
    {"HeaderOverCap", [] { return Bytes().u64(200'000'000).raw("{}").v; }, "exceeds the 100 MB limit"},
    {"HeaderLenHuge", [] { return Bytes().u64(~0ull).raw("{}").v; }, "exceeds the 100 MB limit"},
    {"BadJson", [] { return stFile("{\"a\": ", 0); }, "header is not valid JSON"},
    {"JsonNotObject", [] { return stFile("[1, 2]  ", 0); }, "header JSON is not an object"},
    {"EntryNotObject", [] { return stFile(R"({"a": 5})", 0); }, "tensor 'a': header entry is not an object"},
    {"MissingDType", [] { return stFile(R"({"a":{"shape":[1],"data_offsets":[0,1]}})", 1); },
     "tensor 'a': missing or non-string 'dtype'"},
    {"UnknownDType", [] { return stFile(R"({"a":{"dtype":"Q9","shape":[1],"data_offsets":[0,1]}})", 1); },
     "tensor 'a': unsupported dtype 'Q9'"},
    {"MissingShape", [] { return stFile(R"({"a":{"dtype":"U8","data_offsets":[0,1]}})", 1); },
     "missing or non-array 'shape'"},
    {"FractionalDim", [] { return stFile(R"({"a":{"dtype":"U8","shape":[1.5],"data_offsets":[0,1]}})", 1); },
     "shape entry is not an integer"},
    {"NegativeDim", [] { return stFile(R"({"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,0]}})", 0); },
     "tensor 'a': negative dimension -1"},
    {"DimProductOverflow",
     [] { return stFile(R"({"a":{"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,0]}})", 0); },
     "element count of the shape overflows"},
    {"ByteSizeOverflow",
     [] { return stFile(R"({"a":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,0]}})", 0); },
     "byte size of the shape overflows"},
    {"OffsetsWrongArity", [] { return stFile(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0]}})", 1); },
     "'data_offsets' must be an array [begin, end]"},
    {"OffsetsNegative", [] { return stFile(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[-1,0]}})", 1); },
     "must be non-negative integers"},
    {"BeginAfterEnd", [] { return stFile(R"({"a":{"dtype":"U8","shape":[0],"data_offsets":[4,0]}})", 4); },
     "data_offsets begin 4 > end 0"},
    {"ShapeOffsetMismatch", [] { return stFile(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", 4); },
     "tensor 'a': data_offsets span 4 bytes but dtype and shape need 8"},
    {"OffsetsOutOfBounds", [] { return stFile(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 4); },
     "tensor 'a': data_offsets [0, 8) lie outside the data area of 4 bytes"},
    {"Overlap",
     [] { return stFile(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}})", 6); },
     "tensors 'a' and 'b' overlap"},
    {"Gap",
     [] { return stFile(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[2],"data_offsets":[6,8]}})", 8); },
     "gap of 2 bytes in the data area before tensor 'b'"},
    {"LeadingGap", [] { return stFile(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}})", 4); },
     "before tensor 'a'"},
    {"TrailingBytes", [] { return stFile(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})", 5); },
     "3 trailing bytes after the last tensor"},
    {"DuplicateName",
     [] { return stFile(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})", 2); },
     "duplicate tensor name 'a'"},
    {"DuplicateNameEscaped",
     [] { return stFile(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"\u0061":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})", 2); },
     "duplicate key in header"},
    {"MetadataNotObject", [] { return stFile(R"({"__metadata__":[1]})", 0); }, "__metadata__ is not an object"},
    {"MetadataNotString", [] { return stFile(R"({"__metadata__":{"format":1}})", 0); },
     "__metadata__ value of 'format' is not a string"},
};

class MalformedSafetensors : public ::testing::TestWithParam<MalformedSt> {};

TEST_P(MalformedSafetensors, Rejected) {
  TempDir dir;
  std::string path = dir.file(GetParam().name + ".safetensors");
  writeBytes(path, GetParam().build());
  auto f = SafetensorsFile::open(path);
  ASSERT_FALSE(bool(f)) << "accepted a malformed file";
  std::string msg = errorText(f);
  EXPECT_THAT(msg, HasSubstr(GetParam().expect));
  EXPECT_THAT(msg, HasSubstr(path + ": ")); // every message names the file
}

INSTANTIATE_TEST_SUITE_P(Corpus, MalformedSafetensors, ::testing::ValuesIn(kMalformedSt),
                         [](const auto &info) { return info.param.name; });

} // namespace

TEST(Safetensors, TruncatedAtEveryLengthNeverCrashes) {
  TempDir dir;
  SafetensorsWriter w;
  w.add("x", DType::F32, {3, 2}, pattern(24, 5));
  w.add("y", DType::I8, {5}, pattern(5, 6));
  std::string full = dir.file("full.safetensors");
  ASSERT_FALSE(w.write(full));
  std::vector<uint8_t> bytes = readBytes(full);
  std::string cut = dir.file("cut.safetensors");
  for (size_t len = 0; len < bytes.size(); ++len) {
    writeBytes(cut, std::vector<uint8_t>(bytes.begin(), bytes.begin() + len));
    auto f = SafetensorsFile::open(cut);
    EXPECT_FALSE(bool(f)) << "accepted a file cut to " << len << " bytes";
    if (!f)
      llvm::consumeError(f.takeError());
  }
}

TEST(Safetensors, MissingFile) {
  auto f = SafetensorsFile::open("/nonexistent/qlc/x.safetensors");
  EXPECT_THAT(errorText(f), HasSubstr("/nonexistent/qlc/x.safetensors: cannot open"));
}

TEST(Safetensors, RandomHeaderMutationsAreHandled) {
  TempDir dir;
  SafetensorsWriter w;
  w.add("x", DType::F32, {3, 2}, pattern(24, 5));
  w.add("y", DType::I8, {5}, pattern(5, 6));
  w.add("z", DType::BF16, {}, pattern(2, 7));
  w.setMetadata("format", "pt");
  std::string full = dir.file("full.safetensors");
  ASSERT_FALSE(w.write(full));
  const std::vector<uint8_t> bytes = readBytes(full);
  uint64_t headerEnd;
  std::memcpy(&headerEnd, bytes.data(), 8);
  headerEnd += 8;
  std::mt19937 rng(777);
  std::string path = dir.file("mut.safetensors");
  for (int iter = 0; iter < 1500; ++iter) {
    std::vector<uint8_t> m = bytes;
    int n = 1 + int(rng() % 3);
    for (int k = 0; k < n; ++k) {
      size_t at = rng() % headerEnd;
      // Mostly JSON-ish characters so that some mutants still parse.
      static const char kChars[] = "0123456789[]{},:\"-eE. x";
      m[at] = (rng() % 4 == 0) ? uint8_t(rng()) : uint8_t(kChars[rng() % (sizeof(kChars) - 1)]);
    }
    writeBytes(path, m);
    auto f = SafetensorsFile::open(path);
    if (!f) {
      llvm::consumeError(f.takeError());
      continue;
    }
    uint64_t total = 0;
    for (const TensorView &t : (*f)->tensors()) {
      EXPECT_EQ(t.data.size(), uint64_t(t.numElements()) * dtypeSize(t.dtype));
      total += t.data.size();
    }
    EXPECT_EQ(total, m.size() - headerEnd);
  }
}
