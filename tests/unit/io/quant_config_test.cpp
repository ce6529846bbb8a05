#include "io/quant_config.h"
#include "test_util.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

using namespace qlc::io;
using namespace qlc::io::test;
using ::testing::HasSubstr;

TEST(QuantConfig, FromConfigJson) {
  TempDir dir;
  writeText(dir.file("config.json"),
            R"({"architectures":["LlamaForCausalLM"],"hidden_size":256,)"
            R"("quantization_config":{"quant_method":"awq","bits":4,"group_size":128}})");
  writeText(dir.file("quantize_config.json"), R"({"quant_method":"gptq"})"); // shadowed
  auto q = loadQuantConfig(dir.path());
  ASSERT_TRUE(bool(q)) << errorText(q);
  EXPECT_EQ(q->file, dir.file("config.json"));
  EXPECT_EQ(q->quantization.getString("quant_method"), "awq");
  EXPECT_EQ(q->quantization.getInteger("bits"), 4);
  EXPECT_EQ(q->modelConfig.getInteger("hidden_size"), 256);
}

TEST(QuantConfig, LegacyFilesAndAscend) {
  for (const char *name : {"quant_config.json", "quantize_config.json",
                           "quant_model_description.json"}) {
    SCOPED_TRACE(name);
    TempDir dir;
    writeText(dir.file("config.json"), R"({"hidden_size":64})");
    writeText(dir.file(name), R"({"bits":8,"model_quant_type":"W8A8_DYNAMIC"})");
    auto q = loadQuantConfig(dir.path());
    ASSERT_TRUE(bool(q)) << errorText(q);
    EXPECT_EQ(q->file, dir.file(name));
    EXPECT_EQ(q->quantization.getInteger("bits"), 8);
    EXPECT_EQ(q->modelConfig.getInteger("hidden_size"), 64);
  }
}

TEST(QuantConfig, DenseModel) {
  TempDir dir;
  writeText(dir.file("config.json"), R"({"hidden_size":64,"quantization_config":null})");
  auto q = loadQuantConfig(dir.path());
  ASSERT_TRUE(bool(q)) << errorText(q);
  EXPECT_TRUE(q->quantization.empty());
  EXPECT_TRUE(q->file.empty());
  EXPECT_EQ(q->modelConfig.getInteger("hidden_size"), 64);

  TempDir empty;
  auto e = loadQuantConfig(empty.path());
  ASSERT_TRUE(bool(e)) << errorText(e);
  EXPECT_TRUE(e->quantization.empty());
  EXPECT_TRUE(e->modelConfig.empty());
}

// Malformed config corpus.
TEST(QuantConfig, ConfigNotJson) {
  TempDir dir;
  writeText(dir.file("config.json"), "{\n  \"hidden_size\": 64,\n  oops\n}");
  auto q = loadQuantConfig(dir.path());
  std::string msg = errorText(q);
  EXPECT_THAT(msg, HasSubstr(dir.file("config.json") + ": invalid JSON: [3:"));
}

TEST(QuantConfig, QuantizationConfigNotObject) {
  TempDir dir;
  writeText(dir.file("config.json"), R"({"quantization_config":"awq"})");
  auto q = loadQuantConfig(dir.path());
  EXPECT_THAT(errorText(q), HasSubstr("config.json: quantization_config is not an object"));
}

TEST(QuantConfig, ConfigTopLevelNotObject) {
  TempDir dir;
  writeText(dir.file("config.json"), "[1, 2, 3]");
  auto q = loadQuantConfig(dir.path());
  EXPECT_THAT(errorText(q), HasSubstr("config.json: top-level JSON value is not an object"));
}

TEST(QuantConfig, LegacyFileNotJson) {
  TempDir dir;
  writeText(dir.file("quantize_config.json"), "{\"bits\": 4,}");
  auto q = loadQuantConfig(dir.path());
  EXPECT_THAT(errorText(q), HasSubstr("quantize_config.json: invalid JSON: [1:"));
}

TEST(QuantConfig, NotADirectory) {
  auto q = loadQuantConfig("/nonexistent/qlc-model");
  EXPECT_THAT(errorText(q), HasSubstr("/nonexistent/qlc-model: not a directory"));
}
