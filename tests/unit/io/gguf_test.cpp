#include "io/gguf.h"
#include "test_util.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <random>

using namespace qlc::io;
using namespace qlc::io::test;
using ::testing::HasSubstr;

namespace {

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i)
    v[i] = uint8_t(seed * 31 + i * 13);
  return v;
}

/// A writer holding every KV type, nested arrays and tensors of several ggml types and shapes.
GgufWriter richWriter(uint32_t version, uint32_t alignment) {
  GgufWriter w;
  w.setVersion(version);
  w.addString("general.architecture", "llama");
  w.setAlignment(alignment);
  w.addU8("t.u8", 250);
  w.addI8("t.i8", -7);
  w.addU16("t.u16", 65000);
  w.addI16("t.i16", -32000);
  w.addU32("t.u32", 4000000000u);
  w.addI32("t.i32", -2000000000);
  w.addF32("t.f32", 1.25f);
  w.addBool("t.bool.true", true);
  w.addBool("t.bool.false", false);
  w.addString("t.string", "héllo wörld");
  w.addString("t.string.empty", "");
  w.addU64("t.u64", ~0ull);
  w.addI64("t.i64", INT64_MIN);
  w.addF64("t.f64", -3.141592653589793);
  w.addStringArray("t.arr.str", {"<unk>", "<s>", "", "▁the"});
  w.addArray("t.arr.f32", GgufType::F32,
             {GgufValue::makeFloat(GgufType::F32, 0.5), GgufValue::makeFloat(GgufType::F32, -2)});
  w.addArray("t.arr.i32", GgufType::I32,
             {GgufValue::makeInt(GgufType::I32, 1), GgufValue::makeInt(GgufType::I32, -1)});
  w.addArray("t.arr.bool", GgufType::Bool, {GgufValue::makeBool(true), GgufValue::makeBool(false)});
  w.addArray("t.arr.empty", GgufType::U64, {});
  // Nested: [[1, 2], [], [3]] of U16, and [["a"], ["b", "c"]] of strings, and depth 3.
  w.addArray("t.arr.nested", GgufType::Array,
             {GgufValue::makeArray(GgufType::U16, {GgufValue::makeUInt(GgufType::U16, 1),
                                                    GgufValue::makeUInt(GgufType::U16, 2)}),
              GgufValue::makeArray(GgufType::U16, {}),
              GgufValue::makeArray(GgufType::U16, {GgufValue::makeUInt(GgufType::U16, 3)})});
  w.addArray("t.arr.nested.str", GgufType::Array,
             {GgufValue::makeStringArray({"a"}), GgufValue::makeStringArray({"b", "c"})});
  w.addArray("t.arr.deep", GgufType::Array,
             {GgufValue::makeArray(GgufType::Array, {GgufValue::makeArray(
                                                        GgufType::I8, {GgufValue::makeInt(GgufType::I8, -1)})})});
  w.addTensor("f32.2d", {3, 2}, ggml::F32, pattern(24, 1));
  w.addTensor("q4_0", {64, 2}, ggml::Q4_0, pattern(4 * 18, 2));
  w.addTensor("q4_k.3d", {256, 1, 2}, ggml::Q4_K, pattern(2 * 144, 3));
  w.addTensor("scalar", {}, ggml::F32, pattern(4, 4));
  w.addTensor("empty", {32, 0}, ggml::Q8_0, {});
  w.addTensor("q6_k.4d", {256, 1, 1, 3}, ggml::Q6_K, pattern(3 * 210, 5));
  w.addTensor("f16.odd", {5}, ggml::F16, pattern(10, 6));
  return w;
}

struct RoundTripParam {
  uint32_t version, alignment;
};

class GgufRoundTrip : public ::testing::TestWithParam<RoundTripParam> {};

} // namespace

TEST_P(GgufRoundTrip, MetadataInfosAndBytesSurvive) {
  const auto [version, alignment] = GetParam();
  TempDir dir;
  std::string path = dir.file("rt.gguf");
  GgufWriter w = richWriter(version, alignment);
  ASSERT_FALSE(w.write(path));

  auto f = GgufFile::open(path);
  ASSERT_TRUE(bool(f)) << errorText(f);
  const GgufFile &g = **f;
  EXPECT_EQ(g.version(), version);
  EXPECT_EQ(g.alignment(), alignment);
  EXPECT_EQ(g.dataOffset() % alignment, 0u);
  EXPECT_EQ(readBytes(path).size() % alignment, 0u);

  // Metadata: same keys, same order, same typed values.
  GgufWriter ref = richWriter(version, alignment);
  ASSERT_EQ(g.metadata().size(), 24u);
  EXPECT_EQ(g.metadata()[0].first, "general.architecture");
  EXPECT_EQ(g.metadata()[1].first, "general.alignment");
  EXPECT_EQ(g.find("general.alignment")->type, GgufType::U32);
  EXPECT_EQ(g.find("t.u8")->asUInt(), 250u);
  EXPECT_EQ(g.find("t.i8")->asInt(), -7);
  EXPECT_EQ(g.find("t.u16")->asUInt(), 65000u);
  EXPECT_EQ(g.find("t.i16")->asInt(), -32000);
  EXPECT_EQ(g.find("t.u32")->asUInt(), 4000000000u);
  EXPECT_EQ(g.find("t.i32")->asInt(), -2000000000);
  EXPECT_EQ(g.find("t.f32")->asFloat(), 1.25);
  EXPECT_EQ(g.find("t.f32")->type, GgufType::F32);
  EXPECT_EQ(g.find("t.bool.true")->asBool(), true);
  EXPECT_EQ(g.find("t.bool.false")->asBool(), false);
  EXPECT_EQ(g.find("t.string")->asString(), "héllo wörld");
  EXPECT_EQ(g.find("t.string.empty")->asString(), "");
  EXPECT_EQ(g.find("t.u64")->asUInt(), ~0ull);
  EXPECT_FALSE(g.find("t.u64")->asInt().has_value()); // does not fit int64
  EXPECT_EQ(g.find("t.i64")->asInt(), INT64_MIN);
  EXPECT_FALSE(g.find("t.i64")->asUInt().has_value());
  EXPECT_EQ(g.find("t.f64")->asFloat(), -3.141592653589793);
  const auto *strs = g.find("t.arr.str")->asArray();
  ASSERT_NE(strs, nullptr);
  ASSERT_EQ(strs->size(), 4u);
  EXPECT_EQ((*strs)[3].asString(), "▁the");
  EXPECT_EQ(g.find("t.arr.str")->elemType, GgufType::String);
  const auto *nested = g.find("t.arr.nested")->asArray();
  ASSERT_NE(nested, nullptr);
  ASSERT_EQ(nested->size(), 3u);
  EXPECT_EQ((*nested)[0].elemType, GgufType::U16);
  EXPECT_EQ((*nested)[0].asArray()->at(1).asUInt(), 2u);
  EXPECT_TRUE((*nested)[1].asArray()->empty());
  EXPECT_EQ(g.find("t.arr.deep")->asArray()->at(0).asArray()->at(0).asArray()->at(0).asInt(), -1);
  EXPECT_EQ(g.find("missing"), nullptr);

  // Compare every value with what was written, by writing the read metadata back out.
  GgufWriter again;
  again.setVersion(version);
  for (const auto &[k, v] : g.metadata())
    again.addKV(k, v);
  for (const GgufTensorInfo &t : g.tensors())
    again.addTensor(t.name, t.ne, t.ggmlType, t.data);
  std::string path2 = dir.file("rt2.gguf");
  ASSERT_FALSE(again.write(path2));
  EXPECT_EQ(readBytes(path), readBytes(path2)) << "re-writing what was read is not byte-identical";

  // Tensor infos: order, dims, types, sequential padded offsets, bytes.
  struct T {
    const char *name;
    std::vector<int64_t> ne;
    uint32_t type;
    size_t bytes;
    uint8_t seed;
  };
  const T expect[] = {{"f32.2d", {3, 2}, ggml::F32, 24, 1},
                      {"q4_0", {64, 2}, ggml::Q4_0, 72, 2},
                      {"q4_k.3d", {256, 1, 2}, ggml::Q4_K, 288, 3},
                      {"scalar", {}, ggml::F32, 4, 4},
                      {"empty", {32, 0}, ggml::Q8_0, 0, 0},
                      {"q6_k.4d", {256, 1, 1, 3}, ggml::Q6_K, 630, 5},
                      {"f16.odd", {5}, ggml::F16, 10, 6}};
  ASSERT_EQ(g.tensors().size(), std::size(expect));
  uint64_t offset = 0;
  for (size_t i = 0; i < std::size(expect); ++i) {
    const GgufTensorInfo &t = g.tensors()[i];
    EXPECT_EQ(t.name, expect[i].name);
    EXPECT_EQ(t.ne, expect[i].ne);
    EXPECT_EQ(t.ggmlType, expect[i].type);
    EXPECT_EQ(t.offset, offset) << t.name;
    EXPECT_EQ(std::vector<uint8_t>(t.data.begin(), t.data.end()),
              pattern(expect[i].bytes, expect[i].seed))
        << t.name;
    EXPECT_EQ(g.findTensor(t.name), &t);
    offset += (expect[i].bytes + alignment - 1) / alignment * alignment;
  }
  EXPECT_EQ(g.findTensor("q4_k.3d")->numElements(), 512);
  EXPECT_EQ(g.findTensor("nope"), nullptr);
}

INSTANTIATE_TEST_SUITE_P(VersionsAndAlignments, GgufRoundTrip,
                         ::testing::Values(RoundTripParam{3, 32}, RoundTripParam{3, 64},
                                           RoundTripParam{2, 32}, RoundTripParam{2, 64},
                                           RoundTripParam{3, 8}),
                         [](const auto &info) {
                           return (llvm::Twine("v") + llvm::Twine(info.param.version) + "_align" +
                                   llvm::Twine(info.param.alignment))
                               .str();
                         });

TEST(Gguf, NoTensorsAndNoKVs) {
  TempDir dir;
  GgufWriter w;
  ASSERT_FALSE(w.write(dir.file("e.gguf")));
  EXPECT_EQ(readBytes(dir.file("e.gguf")).size(), 24u);
  auto f = GgufFile::open(dir.file("e.gguf"));
  ASSERT_TRUE(bool(f)) << errorText(f);
  EXPECT_TRUE((*f)->tensors().empty());
  EXPECT_TRUE((*f)->metadata().empty());
  EXPECT_EQ((*f)->alignment(), 32u);
}

TEST(Gguf, PaddingIsZeroBytes) {
  TempDir dir;
  GgufWriter w;
  w.addString("k", "v");
  w.addTensor("a", {3}, ggml::F32, std::vector<uint8_t>(12, 0xFF));
  w.addTensor("b", {1}, ggml::I8, std::vector<uint8_t>(1, 0xFF));
  ASSERT_FALSE(w.write(dir.file("p.gguf")));
  auto f = GgufFile::open(dir.file("p.gguf"));
  ASSERT_TRUE(bool(f)) << errorText(f);
  std::vector<uint8_t> bytes = readBytes(dir.file("p.gguf"));
  uint64_t d = (*f)->dataOffset();
  ASSERT_EQ(bytes.size(), d + 64);
  for (uint64_t i = 0; i < 64; ++i) {
    bool inData = i < 12 || i == 32;
    EXPECT_EQ(bytes[d + i], inData ? 0xFF : 0x00) << i;
  }
}

TEST(Gguf, WriterRejectsBadInput) {
  TempDir dir;
  std::string p = dir.file("w.gguf");
  {
    GgufWriter w;
    w.addTensor("a", {33}, ggml::Q4_0, std::vector<uint8_t>(18));
    EXPECT_THAT(errorText(w.write(p)), HasSubstr("not a multiple of the Q4_0 block size"));
  }
  {
    GgufWriter w;
    w.addTensor("a", {32}, ggml::Q4_0, std::vector<uint8_t>(17));
    EXPECT_THAT(errorText(w.write(p)), HasSubstr("has 17 bytes"));
  }
  {
    GgufWriter w;
    w.addU32("k", 1);
    w.addU32("k", 2);
    EXPECT_THAT(errorText(w.write(p)), HasSubstr("duplicate key 'k'"));
  }
  {
    GgufWriter w;
    w.addArray("k", GgufType::U32, {GgufValue::makeInt(GgufType::I32, 1)});
    EXPECT_THAT(errorText(w.write(p)), HasSubstr("array element of type INT32"));
  }
  {
    GgufWriter w;
    w.setAlignment(48);
    EXPECT_THAT(errorText(w.write(p)), HasSubstr("not a non-zero power of two"));
  }
  {
    GgufWriter w;
    w.setVersion(1);
    EXPECT_THAT(errorText(w.write(p)), HasSubstr("version 1"));
  }
  {
    GgufWriter w;
    w.addTensor("a", {1}, ggml::F32, std::vector<uint8_t>(4));
    w.addTensor("a", {1}, ggml::F32, std::vector<uint8_t>(4));
    EXPECT_THAT(errorText(w.write(p)), HasSubstr("duplicate tensor name 'a'"));
  }
}

TEST(Gguf, TruncatedAtEveryLengthIsAnError) {
  TempDir dir;
  std::string full = dir.file("full.gguf");
  ASSERT_FALSE(richWriter(3, 32).write(full));
  std::vector<uint8_t> bytes = readBytes(full);
  ASSERT_GT(bytes.size(), 1000u);
  std::string cut = dir.file("cut.gguf");
  for (size_t len = 0; len < bytes.size(); ++len) {
    writeBytes(cut, std::vector<uint8_t>(bytes.begin(), bytes.begin() + len));
    auto f = GgufFile::open(cut);
    EXPECT_FALSE(bool(f)) << "accepted a file cut to " << len << " of " << bytes.size();
    if (!f) {
      std::string msg = llvm::toString(f.takeError());
      EXPECT_THAT(msg, HasSubstr(cut + ": "));
    }
  }
  EXPECT_TRUE(bool(GgufFile::open(full)));
}

// ---------------------------------------------------------------------------------------------
// Malformed corpus: files crafted byte by byte.

namespace {

constexpr uint32_t kMagic = 0x46554747;

Bytes kvU32(llvm::StringRef k, uint32_t v) { return Bytes().str(k).u32(4).u32(v); }
Bytes kvU64(llvm::StringRef k, uint64_t v) { return Bytes().str(k).u32(10).u64(v); }
Bytes kvStr(llvm::StringRef k, llvm::StringRef v) { return Bytes().str(k).u32(8).str(v); }
Bytes info(llvm::StringRef name, std::vector<int64_t> ne, uint32_t type, uint64_t offset) {
  Bytes b;
  b.str(name).u32(uint32_t(ne.size()));
  for (int64_t d : ne)
    b.i64(d);
  return b.u32(type).u64(offset);
}

/// A GGUF file assembled from raw pieces; counts default to the number of pieces.
struct Raw {
  uint32_t magic = kMagic;
  uint32_t version = 3;
  std::optional<uint64_t> nTensors, nKV;
  std::vector<Bytes> kvs = {kvStr("general.architecture", "llama")};
  std::vector<Bytes> infos = {info("a", {8}, ggml::F32, 0)};
  size_t align = 32;
  bool pad = true;
  Bytes data = Bytes().zeros(32);

  std::vector<uint8_t> build() const {
    Bytes b;
    b.u32(magic).u32(version).u64(nTensors.value_or(infos.size())).u64(nKV.value_or(kvs.size()));
    for (const Bytes &k : kvs)
      b.append(k);
    for (const Bytes &i : infos)
      b.append(i);
    if (pad && !infos.empty())
      b.padTo(align);
    return b.append(data).v;
  }
};

template <class F> std::function<std::vector<uint8_t>()> mod(F f) {
  return [f] {
    Raw r;
    f(r);
    return r.build();
  };
}

struct MalformedG {
  std::string name;
  std::function<std::vector<uint8_t>()> build;
  std::string expect;
};

std::ostream &operator<<(std::ostream &os, const MalformedG &c) { return os << c.name; }

Bytes nestedArrays(int depth) {
  // depth levels of single-element arrays around one u8.
  if (depth == 0)
    return Bytes().u8(1);
  Bytes inner = nestedArrays(depth - 1);
  Bytes b;
  b.u32(depth == 1 ? 0 : 9).u64(1).append(inner);
  return b;
}

const MalformedG kMalformedG[] = {
    {"Empty", [] { return std::vector<uint8_t>{}; }, "too short for the GGUF magic"},
    {"BadMagic", mod([](Raw &r) { r.magic = 0x4c4d4747; }), "bad magic 0x4c4d4747 (not a GGUF file)"},
    {"Version1", mod([](Raw &r) { r.version = 1; }), "GGUF version 1 is not supported"},
    {"BigEndianVersion", mod([](Raw &r) { r.version = 0x03000000; }), "endianness mismatch"},
    {"Version4", mod([](Raw &r) { r.version = 4; }), "unsupported GGUF version 4"},
    {"HugeTensorCount", mod([](Raw &r) { r.nTensors = 1000000000000ull; }),
     "tensor count 1000000000000 cannot fit"},
    {"HugeKVCount", mod([](Raw &r) { r.nKV = ~0ull; }), "metadata KV count 18446744073709551615 cannot fit"},
    {"HugeKeyLength", mod([](Raw &r) { r.kvs = {Bytes().u64(1ull << 62).raw("k")}; }),
     "key of KV #0 length 4611686018427387904 exceeds"},
    {"HugeStringValue", mod([](Raw &r) { r.kvs = {Bytes().str("k").u32(8).u64(1ull << 62)}; }),
     "value of key 'k' length 4611686018427387904 exceeds"},
    {"HugeArrayCount", mod([](Raw &r) { r.kvs = {Bytes().str("k").u32(9).u32(4).u64(1ull << 61)}; }),
     "key 'k': array of 2305843009213693952 UINT32 elements cannot fit"},
    {"HugeStringArrayCount", mod([](Raw &r) { r.kvs = {Bytes().str("tok").u32(9).u32(8).u64(~0ull)}; }),
     "key 'tok': array of 18446744073709551615 STRING elements cannot fit"},
    {"HugeNestedArrayCount",
     mod([](Raw &r) { r.kvs = {Bytes().str("n").u32(9).u32(9).u64(1).u32(0).u64(1ull << 40)}; }),
     "key 'n': array of 1099511627776 UINT8 elements cannot fit"},
    {"UnknownValueType", mod([](Raw &r) { r.kvs = {Bytes().str("k").u32(13).u32(0)}; }),
     "key 'k' has unknown value type 13"},
    {"UnknownArrayElemType", mod([](Raw &r) { r.kvs = {Bytes().str("k").u32(9).u32(99).u64(0)}; }),
     "key 'k': unknown array element type 99"},
    {"NestedTooDeep",
     mod([](Raw &r) { r.kvs = {Bytes().str("deep").u32(9).append(nestedArrays(kGgufMaxArrayDepth + 1))}; }),
     "key 'deep': arrays nested deeper than 8 levels"},
    {"EmptyKey", mod([](Raw &r) { r.kvs = {kvU32("", 1)}; }), "KV #0 has an empty key"},
    {"DuplicateKey", mod([](Raw &r) { r.kvs.push_back(kvStr("general.architecture", "x")); }),
     "duplicate key 'general.architecture'"},
    {"AlignmentNotPow2", mod([](Raw &r) { r.kvs.push_back(kvU32("general.alignment", 48)); }),
     "general.alignment 48 is not a non-zero power of two"},
    {"AlignmentZero", mod([](Raw &r) { r.kvs.push_back(kvU32("general.alignment", 0)); }),
     "general.alignment 0 is not a non-zero power of two"},
    {"AlignmentWrongType", mod([](Raw &r) { r.kvs.push_back(kvU64("general.alignment", 32)); }),
     "general.alignment must be of type UINT32, not UINT64"},
    {"NDims5", mod([](Raw &r) { r.infos = {info("a", {8, 1, 1, 1, 1}, ggml::F32, 0)}; }),
     "tensor 'a' has 5 dimensions (at most 4)"},
    {"NegativeDim", mod([](Raw &r) { r.infos = {info("a", {8, -3}, ggml::F32, 0)}; }),
     "tensor 'a' has negative dimension ne[1] = -3"},
    {"DimsOverflow", mod([](Raw &r) { r.infos = {info("a", {1ll << 40, 1ll << 40}, ggml::F32, 0)}; }),
     "tensor 'a': tensor size overflows"},
    {"RowOverflow", mod([](Raw &r) { r.infos = {info("a", {INT64_MAX - 31, 1}, ggml::F64, 0)}; }),
     "tensor 'a': row of"},
    {"Ne0NotBlockMultiple", mod([](Raw &r) { r.infos = {info("a", {33, 2}, ggml::Q4_0, 0)}; }),
     "tensor 'a': row length 33 is not a multiple of the Q4_0 block size 32"},
    {"UnknownGgmlType", mod([](Raw &r) { r.infos = {info("a", {8}, 99, 0)}; }),
     "tensor 'a' has unknown ggml type 99"},
    {"RemovedGgmlType4", mod([](Raw &r) { r.infos = {info("a", {32}, 4, 0)}; }),
     "tensor 'a' has removed ggml type 4"},
    {"RemovedGgmlType36", mod([](Raw &r) { r.infos = {info("a", {32}, 36, 0)}; }),
     "tensor 'a' has removed ggml type 36"},
    {"MisalignedOffset",
     mod([](Raw &r) {
       r.infos = {info("a", {4}, ggml::F32, 16)};
       r.data = Bytes().zeros(64);
     }),
     "tensor 'a' offset 16 is not a multiple of the alignment 32"},
    {"DataPastEof",
     mod([](Raw &r) {
       r.infos = {info("a", {16}, ggml::F32, 0)};
       r.data = Bytes().zeros(32);
     }),
     "tensor 'a' data [0, +64) runs past the end of the file (data blob has 32 bytes)"},
    {"OffsetPlusSizeWraps", mod([](Raw &r) { r.infos = {info("a", {8}, ggml::F32, ~0ull - 31)}; }),
     "runs past the end of the file"},
    {"Overlap",
     mod([](Raw &r) {
       r.infos = {info("a", {16}, ggml::F32, 0), info("b", {8}, ggml::F32, 32)};
       r.data = Bytes().zeros(64);
     }),
     "tensors 'a' and 'b' overlap"},
    {"SameOffset",
     mod([](Raw &r) {
       r.infos = {info("a", {8}, ggml::F32, 0), info("b", {8}, ggml::F32, 0)};
     }),
     "overlap"},
    {"DuplicateTensorName",
     mod([](Raw &r) {
       r.infos = {info("a", {8}, ggml::F32, 0), info("a", {8}, ggml::F32, 32)};
       r.data = Bytes().zeros(64);
     }),
     "duplicate tensor name 'a'"},
    {"EmptyTensorName", mod([](Raw &r) { r.infos = {info("", {8}, ggml::F32, 0)}; }),
     "tensor #0 has an empty name"},
    {"TruncatedInTensorInfo",
     mod([](Raw &r) {
       r.infos = {Bytes().str("a").u32(2).i64(8)};
       r.pad = false;
       r.data = Bytes();
     }),
     "truncated file: dimensions of 'a'"},
    {"DataBlobPastEof",
     mod([](Raw &r) {
       r.infos = {info("z", {0}, ggml::F32, 0)};
       r.pad = false;
       r.data = Bytes();
     }),
     "tensor data blob would start at"},
    {"TruncatedPadding",
     mod([](Raw &r) {
       r.infos = {info("a", {4}, ggml::F32, 0)};
       r.data = Bytes().zeros(16);
     }),
     "ends inside the padding after tensor 'a'"},
};

class MalformedGguf : public ::testing::TestWithParam<MalformedG> {};

TEST_P(MalformedGguf, Rejected) {
  TempDir dir;
  std::string path = dir.file(GetParam().name + ".gguf");
  writeBytes(path, GetParam().build());
  auto f = GgufFile::open(path);
  ASSERT_FALSE(bool(f)) << "accepted a malformed file";
  std::string msg = errorText(f);
  EXPECT_THAT(msg, HasSubstr(GetParam().expect));
  EXPECT_THAT(msg, HasSubstr(path + ": "));
}

INSTANTIATE_TEST_SUITE_P(Corpus, MalformedGguf, ::testing::ValuesIn(kMalformedG),
                         [](const auto &info) { return info.param.name; });

} // namespace

TEST(Gguf, CraftedBaseFileIsValid) {
  // The malformed corpus mutates this file; it must itself be accepted.
  TempDir dir;
  writeBytes(dir.file("base.gguf"), Raw().build());
  auto f = GgufFile::open(dir.file("base.gguf"));
  ASSERT_TRUE(bool(f)) << errorText(f);
  EXPECT_EQ((*f)->tensors().size(), 1u);
  EXPECT_EQ((*f)->find("general.architecture")->asString(), "llama");

  // Version 2 and nesting within the depth limit are accepted, and non-sequential aligned
  // offsets are tolerated (the spec only requires alignment).
  Raw r;
  r.version = 2;
  r.kvs.push_back(Bytes().str("deep").u32(9).append(nestedArrays(kGgufMaxArrayDepth)));
  r.infos = {info("a", {8}, ggml::F32, 64), info("b", {8}, ggml::F32, 0)};
  r.data = Bytes().zeros(96);
  writeBytes(dir.file("v2.gguf"), r.build());
  auto g = GgufFile::open(dir.file("v2.gguf"));
  ASSERT_TRUE(bool(g)) << errorText(g);
  EXPECT_EQ((*g)->version(), 2u);
  EXPECT_EQ((*g)->findTensor("a")->offset, 64u);
}

TEST(Gguf, MissingFile) {
  auto f = GgufFile::open("/nonexistent/qlc/x.gguf");
  EXPECT_THAT(errorText(f), HasSubstr("/nonexistent/qlc/x.gguf: cannot open"));
}

// Random corruption of the header region: every outcome is either a clean error or a file whose
// tensors all lie inside the mapping (run under ASan/UBSan to make this meaningful).
TEST(Gguf, RandomHeaderMutationsAreHandled) {
  TempDir dir;
  std::string full = dir.file("full.gguf");
  ASSERT_FALSE(richWriter(3, 32).write(full));
  const std::vector<uint8_t> bytes = readBytes(full);
  auto base = GgufFile::open(full);
  ASSERT_TRUE(bool(base));
  const uint64_t headerEnd = (*base)->dataOffset();
  std::mt19937 rng(12345);
  std::string path = dir.file("mut.gguf");
  int accepted = 0;
  for (int iter = 0; iter < 1500; ++iter) {
    std::vector<uint8_t> m = bytes;
    int n = 1 + int(rng() % 4);
    for (int k = 0; k < n; ++k) {
      size_t at = rng() % headerEnd;
      m[at] = (rng() % 3 == 0) ? 0xFF : uint8_t(rng());
    }
    writeBytes(path, m);
    auto f = GgufFile::open(path);
    if (!f) {
      llvm::consumeError(f.takeError());
      continue;
    }
    ++accepted;
    for (const GgufTensorInfo &t : (*f)->tensors()) {
      EXPECT_LE((*f)->dataOffset() + t.offset + t.data.size(), m.size()) << t.name;
      EXPECT_EQ(t.data.size(), llvm::cantFail(ggmlTensorBytes(t.ggmlType, t.ne)));
    }
  }
  // Mutating string bytes or values keeps many files valid; most structural hits are errors.
  EXPECT_GT(accepted, 0);
  EXPECT_LT(accepted, 1500);
}
