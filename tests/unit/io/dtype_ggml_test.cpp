#include "io/dtype.h"
#include "io/ggml_types.h"
#include "test_util.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>

using namespace qlc::io;
using ::testing::HasSubstr;

TEST(DType, NamesAndSizesRoundTrip) {
  const DType all[] = {DType::F64, DType::F32, DType::F16, DType::BF16, DType::I64,
                       DType::I32, DType::I16, DType::I8,  DType::U64,  DType::U32,
                       DType::U16, DType::U8,  DType::Bool};
  for (DType t : all) {
    auto back = parseSafetensorsDType(safetensorsName(t));
    ASSERT_TRUE(back.has_value()) << safetensorsName(t).str();
    EXPECT_EQ(*back, t);
  }
  EXPECT_EQ(safetensorsName(DType::Bool), "BOOL");
  EXPECT_EQ(safetensorsName(DType::BF16), "BF16");
  EXPECT_EQ(dtypeSize(DType::F64), 8u);
  EXPECT_EQ(dtypeSize(DType::BF16), 2u);
  EXPECT_EQ(dtypeSize(DType::I8), 1u);
  EXPECT_EQ(dtypeSize(DType::Bool), 1u);
  EXPECT_EQ(dtypeSize(DType::U32), 4u);
  EXPECT_FALSE(parseSafetensorsDType("F8_E4M3").has_value());
  EXPECT_FALSE(parseSafetensorsDType("f32").has_value());
}

TEST(GgmlTypes, TableMatchesFormatsSection63And64) {
  struct Expect {
    const char *name;
    uint32_t id, blck, size;
  };
  const Expect table[] = {
      {"F32", 0, 1, 4},         {"F16", 1, 1, 2},         {"Q4_0", 2, 32, 18},
      {"Q4_1", 3, 32, 20},      {"Q5_0", 6, 32, 22},      {"Q5_1", 7, 32, 24},
      {"Q8_0", 8, 32, 34},      {"Q8_1", 9, 32, 36},      {"Q2_K", 10, 256, 84},
      {"Q3_K", 11, 256, 110},   {"Q4_K", 12, 256, 144},   {"Q5_K", 13, 256, 176},
      {"Q6_K", 14, 256, 210},   {"Q8_K", 15, 256, 292},   {"IQ2_XXS", 16, 256, 66},
      {"IQ2_XS", 17, 256, 74},  {"IQ3_XXS", 18, 256, 98}, {"IQ1_S", 19, 256, 50},
      {"IQ4_NL", 20, 32, 18},   {"IQ3_S", 21, 256, 110},  {"IQ2_S", 22, 256, 82},
      {"IQ4_XS", 23, 256, 136}, {"I8", 24, 1, 1},         {"I16", 25, 1, 2},
      {"I32", 26, 1, 4},        {"I64", 27, 1, 8},        {"F64", 28, 1, 8},
      {"IQ1_M", 29, 256, 56},   {"BF16", 30, 1, 2},       {"TQ1_0", 34, 256, 54},
      {"TQ2_0", 35, 256, 66},   {"MXFP4", 39, 32, 17},
  };
  for (const Expect &e : table) {
    const GgmlTypeTraits *t = ggmlTypeTraits(e.id);
    ASSERT_NE(t, nullptr) << e.name;
    EXPECT_EQ(t->name, e.name);
    EXPECT_EQ(t->blockSize, e.blck) << e.name;
    EXPECT_EQ(t->typeSize, e.size) << e.name;
    EXPECT_EQ(ggmlTypeByName(e.name), std::optional<uint32_t>(e.id));
  }
  for (uint32_t removed : {4u, 5u, 31u, 32u, 33u, 36u, 37u, 38u, 1000u})
    EXPECT_EQ(ggmlTypeTraits(removed), nullptr) << removed;
  EXPECT_FALSE(ggmlTypeByName("Q4_2").has_value());

  std::set<uint32_t> ids;
  std::set<std::string> names;
  for (const GgmlTypeTraits &t : ggmlAllTypes()) {
    EXPECT_TRUE(ids.insert(t.id).second);
    EXPECT_TRUE(names.insert(t.name.str()).second);
    EXPECT_EQ(ggmlTypeTraits(t.id), &t);
  }
}

TEST(GgmlTypes, RowBytes) {
  EXPECT_EQ(llvm::cantFail(ggmlRowBytes(ggml::Q4_K, 512)), 2u * 144u);
  EXPECT_EQ(llvm::cantFail(ggmlRowBytes(ggml::Q8_0, 256)), 8u * 34u);
  EXPECT_EQ(llvm::cantFail(ggmlRowBytes(ggml::F16, 7)), 14u);
  EXPECT_EQ(llvm::cantFail(ggmlRowBytes(ggml::Q6_K, 0)), 0u);

  auto bad = ggmlRowBytes(ggml::Q4_K, 100);
  EXPECT_THAT(test::errorText(bad), HasSubstr("not a multiple of the Q4_K block size 256"));
  auto unknown = ggmlRowBytes(4, 32);
  EXPECT_THAT(test::errorText(unknown), HasSubstr("unknown or removed ggml type 4"));
  auto neg = ggmlRowBytes(ggml::F32, -1);
  EXPECT_THAT(test::errorText(neg), HasSubstr("negative"));
  auto huge = ggmlRowBytes(ggml::F64, INT64_MAX - 7);
  EXPECT_THAT(test::errorText(huge), HasSubstr("overflows"));

  EXPECT_EQ(llvm::cantFail(ggmlTensorBytes(ggml::Q4_K, {256, 512, 4})), 144u * 512u * 4u);
  EXPECT_EQ(llvm::cantFail(ggmlTensorBytes(ggml::F32, {})), 4u);
  auto ov = ggmlTensorBytes(ggml::F32, {1 << 20, 1 << 20, 1 << 20, 1 << 20});
  EXPECT_THAT(test::errorText(ov), HasSubstr("overflows"));
}
