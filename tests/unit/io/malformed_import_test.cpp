// The import-level cases of the malformed corpus (tests/lit/malformed/Inputs, written by
// make_corpus.py) through the library instead of the qlc driver: files the container readers
// accept but the importer must reject (GGUF import, safetensors import, config.json and the
// schemes' tensor checks), and g_idx values out of range, which the import maps without reading
// and WeightStore dequantization rejects. Each error must name the file (or folder) and carry the
// message docs/security.md lists; the lit tests (gguf.test, config.test, safetensors.test,
// scheme.test) check the same inputs through `qlc`.
#include <gtest/gtest.h>

#include "llvm/Support/Error.h"

#include "import/importer.h"
#include "runtime/weight_store.h"
#include "schemes/all_schemes.h"

namespace qlc {
namespace {

struct ImportCase {
  const char *name;  ///< gtest name
  const char *input; ///< under Inputs/: a case folder or a file in it
  const char *named; ///< the path the message starts with (under Inputs/); "" = no path
  const char *message;
  const char *dequant = nullptr; ///< if set: the import succeeds, dequantizing this weight fails
};

std::string inputs() { return std::string(QLC_SOURCE_DIR) + "/tests/lit/malformed/Inputs/"; }

const ImportCase kCases[] = {
    // GGUF import (schemes/gguf/gguf_import.cpp, import/importer.cpp)
    {"GgufIq2xxs", "gguf-iq2xxs-import/model.gguf", "gguf-iq2xxs-import/model.gguf",
     "tensor 'blk.0.ffn_up.weight' has ggml type IQ2_XXS, which qlc does not import (supported: "
     "F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K)"},
    {"Gguf4Dims", "gguf-4-dims-import/model.gguf", "gguf-4-dims-import/model.gguf",
     "tensor 'w' has 4 dims; weights have 1 to 3"},
    {"GgufQuantizedVector", "gguf-quantized-vector/model.gguf", "gguf-quantized-vector/model.gguf",
     "tensor 'output_norm.weight' is a quantized vector"},
    {"GgufZeroDimQuantized", "gguf-zero-dim-quantized/model.gguf",
     "gguf-zero-dim-quantized/model.gguf",
     "tensor 'output.weight': shape must be [N, K] with positive dims, got [4611686018427387904, 0]"},
    {"GgufTwoTensorsOneModule", "gguf-two-tensors-one-module/model.gguf",
     "gguf-two-tensors-one-module/model.gguf",
     "two tensors map to 'model.layers.0.mlp.up_proj' (one is 'blk.0.ffn_up.weight')"},
    {"GgufBlockCountHuge", "gguf-block-count-huge/model.gguf", "gguf-block-count-huge/model.gguf",
     "'llama.block_count' = 4294967295 but the file has tensors for 0 blocks"},
    {"GgufTopKTooLarge", "gguf-top-k-too-large/model.gguf", "gguf-top-k-too-large/model.gguf",
     "llama.expert_used_count = 9 exceeds the 2 experts of model.layers.0.mlp.experts"},
    {"GgufRouterExpertMismatch", "gguf-router-expert-mismatch/model.gguf", "",
     "moe router logits have 3 columns but there are 2 experts"},
    // safetensors import (import/hf_provider.cpp, import/importer.cpp)
    {"StIntDenseWeight", "st-int-dense-weight/model.safetensors",
     "st-int-dense-weight/model.safetensors",
     "tensor 'model.layers.0.mlp.up_proj.weight' has dtype I32, which is not a float type a dense "
     "weight can have"},
    {"StModuleWithoutWeight", "st-module-without-weight", "st-module-without-weight",
     "module 'model.layers.0.mlp.up_proj' has no tensor 'model.layers.0.mlp.up_proj.weight'"},
    {"CfgMissingPath", "cfg-missing-path/absent", "cfg-missing-path/absent",
     "no such file or directory"},
    {"CfgNoModelFile", "cfg-no-model-file", "cfg-no-model-file",
     "no model.safetensors, model.safetensors.index.json or *.safetensors file in this folder"},
    {"CfgIndexNotJson", "cfg-index-not-json", "cfg-index-not-json/model.safetensors.index.json",
     "invalid JSON: [1:17, byte=17]: Invalid JSON value"},
    {"CfgIndexNoWeightMap", "cfg-index-no-weight-map",
     "cfg-index-no-weight-map/model.safetensors.index.json", "missing 'weight_map' object"},
    {"CfgTensorInTwoFiles", "cfg-tensor-in-two-files", "cfg-tensor-in-two-files/b.safetensors",
     "tensor 'model.norm.weight' is also in "},
    {"StExpertMissing", "st-expert-missing", "st-expert-missing",
     "model.layers.0.mlp.experts.up_proj: expert 1 is missing (experts must be numbered 0..E-1)"},
    {"StExpertTypeMismatch", "st-expert-type-mismatch", "st-expert-type-mismatch",
     "model.layers.0.mlp.experts.up_proj: expert 1 is tensor<4x8xf16> but expert 0 is "
     "tensor<4x8xf32>"},
    // config.json: the scheme registry and the schemes' configure()
    {"CfgUnknownQuantMethod", "cfg-unknown-quant-method", "cfg-unknown-quant-method/config.json",
     "unknown quant_method 'hqq': no registered scheme reads it (registered: "},
    {"CfgNoQuantMethod", "cfg-no-quant-method", "cfg-no-quant-method/config.json",
     "unknown quant_method '(none)': no registered scheme reads it (registered: "},
    {"CfgCtUnknownFormat", "cfg-ct-unknown-format", "cfg-ct-unknown-format/config.json",
     "config_groups.group_0: compressed-tensors format 'float-quantized' is not supported (qlc "
     "reads pack-quantized)"},
    {"CfgAwqBits3", "cfg-awq-bits-3", "cfg-awq-bits-3/config.json",
     "AWQ bits = 3 is not supported (4, or 8 for awq_marlin checkpoints)"},
    // Scheme tensors (schemes/*/*_import.cpp)
    {"SchemeAwqMissingQzeros", "scheme-awq-missing-qzeros",
     "scheme-awq-missing-qzeros/model.safetensors",
     "tensor 'model.layers.0.mlp.up_proj.qzeros' is missing"},
    {"SchemeAwqQweightRank", "scheme-awq-qweight-rank", "scheme-awq-qweight-rank/model.safetensors",
     "tensor 'model.layers.0.mlp.up_proj.qweight' has shape [256], expected 2 dims"},
    {"SchemeAwqScalesColumns", "scheme-awq-scales-columns",
     "scheme-awq-scales-columns/model.safetensors",
     "tensor 'model.layers.0.mlp.up_proj.qweight' has shape [64, 4] but scales have N = 16 "
     "columns, so qweight should be [64, 2] (4-bit codes packed along N)"},
    {"SchemeGptqQweightDtype", "scheme-gptq-qweight-dtype",
     "scheme-gptq-qweight-dtype/model.safetensors",
     "tensor 'model.layers.0.mlp.up_proj.qweight' has dtype F32, expected I32"},
    {"SchemeGptqQzerosShape", "scheme-gptq-qzeros-shape", "scheme-gptq-qzeros-shape/model.safetensors",
     "tensor 'model.layers.0.mlp.up_proj.qzeros' has shape [3, 4], expected [2, 4] (rows = "
     "ceil(K/G) = ceil(64/32), columns = N*bits/32)"},
    {"SchemeGptqGIdxShape", "scheme-gptq-g-idx-shape", "scheme-gptq-g-idx-shape/model.safetensors",
     "tensor 'model.layers.0.mlp.up_proj.g_idx' has shape [32], expected [64] (one group index "
     "per input row k)"},
    {"SchemeCtScaleShape", "scheme-ct-scale-shape", "scheme-ct-scale-shape/model.safetensors",
     "tensor 'model.layers.0.mlp.up_proj.weight_scale' has shape [32, 3], expected [32, 2] (rows "
     "= N, K/G = 64/32 columns)"},
    {"SchemeW8a8ScaleShape", "scheme-w8a8-scale-shape", "scheme-w8a8-scale-shape/model.safetensors",
     "tensor 'model.layers.0.mlp.up_proj.weight_scale' has shape [32, 2], expected [32, 1] (one "
     "scale per output row)"},
    // g_idx ranges: data, checked when the weight is read
    {"SchemeGptqGIdxRange", "scheme-gptq-g-idx-range", "scheme-gptq-g-idx-range/model.safetensors",
     "tensor 'model.layers.0.mlp.up_proj.g_idx': weight @model.layers.0.mlp.up_proj: g_idx[63] = 2 "
     "is not a group index (0..1)",
     "model.layers.0.mlp.up_proj"},
    {"SchemeCtGIdxRange", "scheme-ct-g-idx-range", "scheme-ct-g-idx-range/model.safetensors",
     "tensor 'model.layers.0.mlp.up_proj.weight_g_idx': weight @model.layers.0.mlp.up_proj: "
     "weight_g_idx[63] = 2 is not a group index (0..1)",
     "model.layers.0.mlp.up_proj"},
};

class MalformedImport : public ::testing::TestWithParam<ImportCase> {};

TEST_P(MalformedImport, Rejected) {
  schemes::registerAllSchemes();
  const ImportCase &c = GetParam();
  const std::string path = inputs() + c.input;
  auto m = importCheckpoint(path);
  std::string error;
  if (!c.dequant) {
    ASSERT_FALSE(bool(m)) << path << " was imported";
    error = llvm::toString(m.takeError());
  } else {
    // The import maps the tensors without reading them; the bad values surface when read.
    ASSERT_TRUE(bool(m)) << llvm::toString(m.takeError());
    const Weight *w = (*m)->lookupWeight(c.dequant);
    ASSERT_NE(w, nullptr) << c.dequant;
    auto store = WeightStore::openForModule(**m);
    ASSERT_TRUE(bool(store)) << llvm::toString(store.takeError());
    auto data = dequantizeWeight(*w, store->get());
    ASSERT_FALSE(bool(data)) << c.dequant << " dequantized";
    error = llvm::toString(data.takeError());
  }
  std::string expected = std::string(c.message);
  if (*c.named)
    expected = inputs() + c.named + ": " + expected;
  EXPECT_NE(error.find(expected), std::string::npos)
      << "error:    " << error << "\nexpected: " << expected;
}

INSTANTIATE_TEST_SUITE_P(Corpus, MalformedImport, ::testing::ValuesIn(kCases),
                         [](const auto &info) { return std::string(info.param.name); });

} // namespace
} // namespace qlc
