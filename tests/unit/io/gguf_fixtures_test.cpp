// Interop with real llama.cpp-written files (QLC_FIXTURES_DIR/gguf, see its README.md).
#include "io/gguf.h"
#include "support/float16.h"
#include "test_util.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <map>

using namespace qlc::io;
using namespace qlc::io::test;
using ::testing::HasSubstr;

namespace {

std::string fixture(llvm::StringRef name) {
  return (llvm::Twine(QLC_FIXTURES_DIR) + "/gguf/" + name).str();
}

#define SKIP_WITHOUT_FIXTURES()                                                                \
  do {                                                                                         \
    if (!llvm::sys::fs::is_directory(QLC_FIXTURES_DIR "/gguf"))                                \
      GTEST_SKIP() << "fixture folder " QLC_FIXTURES_DIR "/gguf is absent";                  \
  } while (0)

struct FixtureFile {
  const char *name;
  uint64_t bytes;
  uint32_t fileType;
  bool moe;
};

const FixtureFile kFiles[] = {
    {"tiny-llama-dense-F16.gguf", 2901376, 1, false},
    {"tiny-llama-dense-Q2_K.gguf", 602016, 10, false},
    {"tiny-llama-dense-Q4_0.gguf", 862624, 2, false},
    {"tiny-llama-dense-Q4_K_M.gguf", 904864, 15, false},
    {"tiny-llama-dense-Q5_K_M.gguf", 1048224, 17, false},
    {"tiny-llama-dense-Q6_K.gguf", 1200544, 18, false},
    {"tiny-llama-dense-Q8_0.gguf", 1549728, 7, false},
    {"tiny-llama-moe-Q4_K_M.gguf", 2424000, 15, true},
};

std::string typeOf(const GgufFile &g, llvm::StringRef tensor) {
  const GgufTensorInfo *t = g.findTensor(tensor);
  if (!t)
    return "<missing " + tensor.str() + ">";
  return ggmlTypeTraits(t->ggmlType)->name.str();
}

std::unique_ptr<GgufFile> openFixture(llvm::StringRef name) {
  auto f = GgufFile::open(fixture(name));
  EXPECT_TRUE(bool(f)) << errorText(f);
  return f ? std::move(*f) : nullptr;
}

} // namespace

TEST(GgufFixtures, AllFilesOpenWithExpectedStructure) {
  SKIP_WITHOUT_FIXTURES();
  for (const FixtureFile &ff : kFiles) {
    SCOPED_TRACE(ff.name);
    auto g = openFixture(ff.name);
    ASSERT_NE(g, nullptr);
    EXPECT_EQ(readBytes(fixture(ff.name)).size(), ff.bytes);
    EXPECT_EQ(g->version(), 3u);
    EXPECT_EQ(g->alignment(), 32u);
    EXPECT_EQ(g->dataOffset() % 32, 0u);
    // dense: 2 blocks x 9 + token_embd, output, output_norm; moe: 2 x 10 (router + 3 expert
    // tensors replace the 3 dense FFN tensors) + 3.
    EXPECT_EQ(g->tensors().size(), ff.moe ? 23u : 21u);
    EXPECT_EQ(g->find("general.architecture")->asString(), "llama");
    ASSERT_NE(g->find("general.file_type"), nullptr);
    EXPECT_EQ(g->find("general.file_type")->asUInt(), ff.fileType);
    EXPECT_EQ(g->find("llama.block_count")->asUInt(), 2u);
    EXPECT_EQ(g->find("llama.embedding_length")->asUInt(), 256u);
    EXPECT_EQ(g->find("llama.attention.head_count_kv")->asUInt(), ff.moe ? 4u : 2u);
    EXPECT_EQ(g->find("llama.rope.freq_base")->asFloat(), 10000.0);
    EXPECT_EQ(g->find("tokenizer.ggml.model")->asString(), "llama");
    const auto *tokens = g->find("tokenizer.ggml.tokens")->asArray();
    ASSERT_NE(tokens, nullptr);
    EXPECT_EQ(tokens->size(), 512u);
    EXPECT_EQ(g->find("tokenizer.ggml.tokens")->elemType, GgufType::String);
    EXPECT_EQ(tokens->at(1).asString(), "<s>");
    EXPECT_EQ(tokens->at(3).asString(), "<0x00>");
    EXPECT_EQ(g->find("tokenizer.ggml.bos_token_id")->asUInt(), 1u);
    EXPECT_EQ(g->find("tokenizer.ggml.add_bos_token")->asBool(), true);
    if (ff.fileType != 1) { // quantized files end with quantization_version and file_type
      EXPECT_EQ(g->metadata().back().first, "general.file_type");
    }

    const GgufTensorInfo *emb = g->findTensor("token_embd.weight");
    ASSERT_NE(emb, nullptr);
    EXPECT_EQ(emb->ne, (std::vector<int64_t>{256, 512}));
    EXPECT_EQ(g->findTensor("output_norm.weight")->ggmlType, ggml::F32);
    EXPECT_EQ(g->findTensor("output_norm.weight")->ne, std::vector<int64_t>{256});
    EXPECT_EQ(g->findTensor("blk.1.attn_k.weight")->ne,
              (std::vector<int64_t>{256, ff.moe ? 256 : 128}));

    // ggml's canonical layout: sequential offsets, each tensor padded to 32; data sized by
    // the type table.
    uint64_t offset = 0;
    for (const GgufTensorInfo &t : g->tensors()) {
      EXPECT_EQ(t.offset, offset) << t.name;
      EXPECT_EQ(t.data.size(), llvm::cantFail(ggmlTensorBytes(t.ggmlType, t.ne))) << t.name;
      offset += (t.data.size() + 31) / 32 * 32;
    }
    EXPECT_EQ(g->dataOffset() + offset, ff.bytes);
  }
}

TEST(GgufFixtures, TensorTypesMatchReadmeTable) {
  SKIP_WITHOUT_FIXTURES();
  {
    auto g = openFixture("tiny-llama-dense-F16.gguf");
    ASSERT_NE(g, nullptr);
    for (const GgufTensorInfo &t : g->tensors())
      EXPECT_EQ(ggmlTypeTraits(t.ggmlType)->name, t.ne.size() == 2 ? "F16" : "F32") << t.name;
    // Weights are N(0,1) x 0.02 stored as F16: a decoded row must look like that.
    const GgufTensorInfo *q = g->findTensor("blk.0.attn_q.weight");
    const uint16_t *h = reinterpret_cast<const uint16_t *>(q->data.data());
    double sumSq = 0;
    for (int i = 0; i < 256 * 256; ++i)
      sumSq += double(qlc::halfToFloat(h[i])) * qlc::halfToFloat(h[i]);
    EXPECT_NEAR(std::sqrt(sumSq / (256 * 256)), 0.02, 0.002);
  }
  {
    auto g = openFixture("tiny-llama-dense-Q2_K.gguf");
    ASSERT_NE(g, nullptr);
    EXPECT_EQ(typeOf(*g, "token_embd.weight"), "Q2_K");
    EXPECT_EQ(typeOf(*g, "blk.0.attn_q.weight"), "Q2_K");
    EXPECT_EQ(typeOf(*g, "blk.1.ffn_up.weight"), "Q2_K");
    EXPECT_EQ(typeOf(*g, "blk.0.attn_v.weight"), "Q3_K");
    EXPECT_EQ(typeOf(*g, "blk.1.attn_output.weight"), "Q3_K");
    EXPECT_EQ(typeOf(*g, "blk.0.ffn_down.weight"), "Q3_K");
    EXPECT_EQ(typeOf(*g, "output.weight"), "Q6_K");
  }
  {
    auto g = openFixture("tiny-llama-dense-Q4_0.gguf");
    ASSERT_NE(g, nullptr);
    EXPECT_EQ(typeOf(*g, "token_embd.weight"), "Q4_0");
    EXPECT_EQ(typeOf(*g, "blk.1.ffn_down.weight"), "Q4_0");
    EXPECT_EQ(typeOf(*g, "output.weight"), "Q6_K");
  }
  for (const char *kind : {"Q4_K", "Q5_K"}) {
    auto g = openFixture(std::string("tiny-llama-dense-") + kind + "_M.gguf");
    ASSERT_NE(g, nullptr);
    EXPECT_EQ(typeOf(*g, "token_embd.weight"), kind);
    EXPECT_EQ(typeOf(*g, "blk.0.attn_v.weight"), kind);
    EXPECT_EQ(typeOf(*g, "blk.0.ffn_down.weight"), kind);
    EXPECT_EQ(typeOf(*g, "blk.1.ffn_gate.weight"), kind);
    EXPECT_EQ(typeOf(*g, "blk.1.attn_v.weight"), "Q6_K");
    EXPECT_EQ(typeOf(*g, "blk.1.ffn_down.weight"), "Q6_K");
    EXPECT_EQ(typeOf(*g, "output.weight"), "Q6_K");
    EXPECT_EQ(g->findTensor("blk.0.ffn_down.weight")->ne, (std::vector<int64_t>{512, 256}));
  }
  for (const char *kind : {"Q6_K", "Q8_0"}) {
    auto g = openFixture(std::string("tiny-llama-dense-") + kind + ".gguf");
    ASSERT_NE(g, nullptr);
    for (const GgufTensorInfo &t : g->tensors())
      EXPECT_EQ(ggmlTypeTraits(t.ggmlType)->name, t.ne.size() == 2 ? kind : "F32") << t.name;
  }
  // llama-quantize's order: output, output_norm, token_embd, then blocks alphabetically.
  auto g = openFixture("tiny-llama-dense-Q8_0.gguf");
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->tensors()[0].name, "output.weight");
  EXPECT_EQ(g->tensors()[1].name, "output_norm.weight");
  EXPECT_EQ(g->tensors()[2].name, "token_embd.weight");
  EXPECT_EQ(g->tensors()[3].name, "blk.0.attn_k.weight");
}

TEST(GgufFixtures, MoeExperts) {
  SKIP_WITHOUT_FIXTURES();
  auto g = openFixture("tiny-llama-moe-Q4_K_M.gguf");
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->find("llama.expert_count")->asUInt(), 4u);
  EXPECT_EQ(g->find("llama.expert_used_count")->asUInt(), 2u);
  EXPECT_EQ(g->findTensor("blk.0.ffn_gate_exps.weight")->ne, (std::vector<int64_t>{256, 512, 4}));
  EXPECT_EQ(g->findTensor("blk.0.ffn_up_exps.weight")->ne, (std::vector<int64_t>{256, 512, 4}));
  EXPECT_EQ(g->findTensor("blk.1.ffn_down_exps.weight")->ne, (std::vector<int64_t>{512, 256, 4}));
  EXPECT_EQ(g->findTensor("blk.0.ffn_gate_inp.weight")->ne, (std::vector<int64_t>{256, 4}));
  EXPECT_EQ(typeOf(*g, "blk.0.ffn_gate_inp.weight"), "F32");
  EXPECT_EQ(typeOf(*g, "blk.1.ffn_gate_inp.weight"), "F32");
  EXPECT_EQ(typeOf(*g, "blk.0.ffn_gate_exps.weight"), "Q4_K");
  EXPECT_EQ(typeOf(*g, "blk.1.ffn_up_exps.weight"), "Q4_K");
  EXPECT_EQ(typeOf(*g, "blk.0.ffn_down_exps.weight"), "Q4_K");
  EXPECT_EQ(typeOf(*g, "blk.1.ffn_down_exps.weight"), "Q6_K");
  EXPECT_EQ(typeOf(*g, "blk.0.attn_v.weight"), "Q4_K");
  EXPECT_EQ(typeOf(*g, "blk.1.attn_v.weight"), "Q6_K");
  EXPECT_EQ(typeOf(*g, "output.weight"), "Q6_K");
  EXPECT_EQ(g->findTensor("blk.0.ffn_gate.weight"), nullptr); // no dense FFN
  // Expert e is the e-th ne0*ne1 slab (FORMATS.md §6.6).
  const GgufTensorInfo *gate = g->findTensor("blk.0.ffn_gate_exps.weight");
  EXPECT_EQ(gate->data.size(), 4u * 512u * llvm::cantFail(ggmlRowBytes(ggml::Q4_K, 256)));
}

// Our writer reproduces llama.cpp's bytes exactly from what our reader returns: the strongest
// check that both sides agree with ggml's canonical layout.
TEST(GgufFixtures, RewriteIsByteIdentical) {
  SKIP_WITHOUT_FIXTURES();
  TempDir dir;
  for (const FixtureFile &ff : kFiles) {
    SCOPED_TRACE(ff.name);
    auto g = openFixture(ff.name);
    ASSERT_NE(g, nullptr);
    GgufWriter w;
    w.setVersion(g->version());
    for (const auto &[k, v] : g->metadata())
      w.addKV(k, v);
    for (const GgufTensorInfo &t : g->tensors())
      w.addTensor(t.name, t.ne, t.ggmlType, t.data);
    std::string out = dir.file("rewrite.gguf");
    ASSERT_FALSE(w.write(out));
    EXPECT_TRUE(readBytes(out) == readBytes(fixture(ff.name)));
  }
}
