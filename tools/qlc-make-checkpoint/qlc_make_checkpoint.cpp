// qlc-make-checkpoint: writes a small HF-style model folder (config.json, quantization config,
// model.safetensors or shards + index) whose Linear weights are random N(0, 0.02) values quantized
// by qlc's own codecs, as AutoAWQ / AutoGPTQ / GPTQModel / llm-compressor / modelslim lay them out.
// For tests and demos of `qlc inspect|import|dequant|run`.
//
//   qlc-make-checkpoint --scheme awq|gptq|ct|w8a8|dense [--bits B] [--group G] [--sym|--asym]
//       [--format v1|v2] [--desc-act] [--moe E] [--layers L] [--hidden H] [--intermediate I]
//       [--vocab V] [--seed S] [--shards N] [--write-f32 FILE] -o DIR
#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include "io/safetensors.h"
#include "schemes/awq/codec.h"
#include "schemes/compressed_tensors/codec.h"
#include "schemes/gptq/codec.h"
#include "schemes/w8a8/codec.h"
#include "support/float16.h"

namespace cl = llvm::cl;
using namespace qlc;

static cl::OptionCategory genCat("qlc-make-checkpoint options");
static cl::opt<std::string> scheme("scheme", cl::desc("awq | gptq | ct | w8a8 | dense"),
                                   cl::Required, cl::cat(genCat));
static cl::opt<int> bitsOpt("bits", cl::desc("Code width (default: 4; w8a8: 8)"), cl::init(0), cl::cat(genCat));
static cl::opt<int64_t> groupOpt("group",
                                 cl::desc("Group size along K; -1 = one group (ct: channel)"),
                                 cl::init(32), cl::cat(genCat));
static cl::opt<bool> symOpt("sym", cl::desc("Symmetric codes (gptq, ct; the default)"));
static cl::opt<bool> asymOpt("asym", cl::desc("Asymmetric codes with zero points"), cl::cat(genCat));
static cl::opt<std::string> formatOpt("format", cl::desc("gptq checkpoint format: v1 | v2"),
                                      cl::init("v1"), cl::cat(genCat));
static cl::opt<bool> descAct("desc-act",
                             cl::desc("Act-order: gptq desc_act / ct actorder = group (g_idx)"), cl::cat(genCat));
static cl::opt<int64_t> moe("moe", cl::desc("Experts per MoE layer (0 = dense MLPs)"), cl::init(0), cl::cat(genCat));
static cl::opt<int64_t> layers("layers", cl::desc("Decoder layers"), cl::init(1), cl::cat(genCat));
static cl::opt<int64_t> hidden("hidden", cl::desc("hidden_size"), cl::init(64), cl::cat(genCat));
static cl::opt<int64_t> intermediate("intermediate",
                                     cl::desc("intermediate_size (per expert for MoE)"),
                                     cl::init(128), cl::cat(genCat));
static cl::opt<int64_t> vocab("vocab", cl::desc("vocab_size"), cl::init(256), cl::cat(genCat));
static cl::opt<unsigned> seed("seed", cl::desc("Random seed"), cl::init(0), cl::cat(genCat));
static cl::opt<unsigned> shards("shards", cl::desc("Number of safetensors shards (1 = one file)"),
                                cl::init(1), cl::cat(genCat));
static cl::opt<std::string> writeF32("write-f32",
                                     cl::desc("Also write the unquantized f32 weights here"),
                                     cl::value_desc("file.safetensors"), cl::cat(genCat));
static cl::opt<std::string> outDir("o", cl::desc("Output model folder"), cl::value_desc("dir"),
                                   cl::Required, cl::cat(genCat));

namespace {

int fail(const llvm::Twine &msg) {
  llvm::errs() << "qlc-make-checkpoint: error: " << msg << "\n";
  return 1;
}

template <class T> llvm::ArrayRef<uint8_t> bytesOf(const std::vector<T> &v) {
  return {reinterpret_cast<const uint8_t *>(v.data()), v.size() * sizeof(T)};
}

struct Generator {
  std::string scheme;
  int bits = 4;
  int64_t group = 32;
  bool sym = true, descAct = false, v2 = false;
  std::mt19937_64 rng;
  io::SafetensorsWriter out, f32;
  uint64_t totalBytes = 0;
  std::vector<uint64_t> sizes; // of every tensor, in order (to pick the shard limit)
  llvm::json::Object description; // w8a8: quant_model_description.json

  void add(const std::string &name, io::DType dt, std::vector<int64_t> shape,
           llvm::ArrayRef<uint8_t> bytes) {
    totalBytes += bytes.size();
    sizes.push_back(bytes.size());
    out.add(name, dt, std::move(shape), bytes);
    if (scheme == "w8a8" && !description.get(name)) // modelslim lists every tensor
      description[name] =
          name.ends_with("_scale") || name.ends_with("_offset") ? "W8A8_DYNAMIC" : "FLOAT";
  }

  std::vector<float> random(int64_t n) {
    std::normal_distribution<float> nd(0.0f, 0.02f);
    std::vector<float> v(size_t(n), 0.0f);
    for (float &x : v)
      x = nd(rng);
    return v;
  }

  void dense(const std::string &name, std::vector<int64_t> shape, const std::vector<float> &w) {
    std::vector<uint16_t> h(w.size());
    for (size_t i = 0; i < w.size(); ++i)
      h[i] = floatToHalf(w[i]);
    add(name, io::DType::F16, shape, bytesOf(h));
    f32.add(name, io::DType::F32, shape, bytesOf(w));
  }

  std::vector<int32_t> permutation(int64_t k) {
    std::vector<int32_t> p(size_t(k), 0);
    std::iota(p.begin(), p.end(), 0);
    std::shuffle(p.begin(), p.end(), rng);
    return p;
  }

  /// One Linear `prefix` of out_features N, in_features K; `quantize` false = dense.
  void linear(const std::string &prefix, int64_t n, int64_t k, bool quantize) {
    std::vector<float> w = random(n * k);
    if (!quantize || scheme == "dense") {
      if (scheme == "w8a8")
        description[prefix + ".weight"] = "FLOAT";
      dense(prefix + ".weight", {n, k}, w);
      return;
    }
    f32.add(prefix + ".weight", io::DType::F32, {n, k}, bytesOf(w));
    if (scheme == "awq") {
      awq::Checkpoint c = awq::quantize(w, k, n, group, bits);
      int64_t groups = group == -1 ? 1 : k / group, words = n * bits / 32;
      add(prefix + ".qweight", io::DType::I32, {k, words}, bytesOf(c.qweight));
      add(prefix + ".qzeros", io::DType::I32, {groups, words}, bytesOf(c.qzeros));
      add(prefix + ".scales", io::DType::F16, {groups, n}, bytesOf(c.scales));
    } else if (scheme == "gptq") {
      gptq::Config cfg;
      cfg.bits = bits;
      cfg.groupSize = group;
      cfg.sym = sym;
      cfg.format = v2 ? gptq::Format::V2 : gptq::Format::V1;
      std::vector<int32_t> perm;
      if (descAct)
        perm = permutation(k);
      gptq::Checkpoint c = gptq::quantize(w, k, n, cfg, perm);
      int64_t groups = gptq::numGroups(k, group);
      add(prefix + ".qweight", io::DType::I32, {gptq::qweightRows(k, bits), n},
          bytesOf(c.qweight));
      add(prefix + ".qzeros", io::DType::I32, {groups, gptq::qzerosCols(n, bits)},
          bytesOf(c.qzeros));
      add(prefix + ".scales", io::DType::F16, {groups, n}, bytesOf(c.scales));
      std::vector<int32_t> gIdx = c.gIdx.empty() ? gptq::sequentialGIdx(k, group) : c.gIdx;
      add(prefix + ".g_idx", io::DType::I32, {k}, bytesOf(gIdx));
    } else if (scheme == "ct") {
      ct::Config cfg;
      cfg.bits = bits;
      cfg.strategy = group == -1 ? ct::Strategy::Channel : ct::Strategy::Group;
      cfg.groupSize = group;
      cfg.symmetric = sym;
      std::vector<int32_t> perm;
      if (descAct)
        perm = permutation(k);
      ct::Checkpoint c = ct::quantize(w, k, n, cfg, perm);
      int64_t pf = 32 / bits, groups = ct::numGroups(k, cfg);
      add(prefix + ".weight_packed", io::DType::I32, {n, (k + pf - 1) / pf},
          bytesOf(c.weightPacked));
      add(prefix + ".weight_scale", io::DType::F16, {n, groups}, bytesOf(c.weightScale));
      if (!sym)
        add(prefix + ".weight_zero_point", io::DType::I32, {(n + pf - 1) / pf, groups},
            bytesOf(c.weightZeroPoint));
      if (!c.weightGIdx.empty())
        add(prefix + ".weight_g_idx", io::DType::I32, {k}, bytesOf(c.weightGIdx));
      add(prefix + ".weight_shape", io::DType::I64, {2}, bytesOf(c.weightShape));
    } else { // w8a8
      w8a8::Checkpoint c = w8a8::quantize(w, k, n);
      description[prefix + ".weight"] = "W8A8_DYNAMIC";
      add(prefix + ".weight", io::DType::I8, {n, k}, bytesOf(c.weight));
      add(prefix + ".weight_scale", io::DType::F32, {n, 1}, bytesOf(c.weightScale));
      add(prefix + ".weight_offset", io::DType::F32, {n, 1}, bytesOf(c.weightOffset));
    }
  }

  void norm(const std::string &name, int64_t h) {
    std::vector<float> w(static_cast<size_t>(h), 0.0f);
    std::normal_distribution<float> nd(1.0f, 0.02f);
    for (float &x : w)
      x = nd(rng);
    dense(name, {h}, w);
  }

  llvm::json::Value quantizationConfig() const {
    if (scheme == "awq")
      return llvm::json::Object{{"quant_method", "awq"},
                                {"zero_point", true},
                                {"group_size", group},
                                {"bits", bits},
                                {"version", "gemm"},
                                {"modules_to_not_convert", llvm::json::Array{"lm_head"}}};
    if (scheme == "gptq")
      return llvm::json::Object{{"bits", bits},
                                {"group_size", group},
                                {"damp_percent", 0.01},
                                {"desc_act", descAct},
                                {"static_groups", false},
                                {"sym", sym},
                                {"true_sequential", true},
                                {"lm_head", false},
                                {"model_name_or_path", nullptr},
                                {"model_file_base_name", "model"},
                                {"quant_method", "gptq"},
                                {"checkpoint_format", v2 ? "gptq_v2" : "gptq"}};
    // compressed-tensors (llm-compressor)
    llvm::json::Object weights{{"num_bits", bits},
                               {"type", "int"},
                               {"symmetric", sym},
                               {"strategy", group == -1 ? "channel" : "group"},
                               {"group_size", group == -1 ? llvm::json::Value(nullptr)
                                                          : llvm::json::Value(group)},
                               {"dynamic", false},
                               {"actorder", descAct ? llvm::json::Value("group")
                                                    : llvm::json::Value(nullptr)},
                               {"block_structure", nullptr},
                               {"observer", "minmax"},
                               {"observer_kwargs", llvm::json::Object{}}};
    llvm::json::Array ignore{"lm_head"};
    if (moe > 0)
      ignore.push_back("re:.*mlp.gate$");
    return llvm::json::Object{
        {"quant_method", "compressed-tensors"},
        {"format", "pack-quantized"},
        {"quantization_status", "compressed"},
        {"global_compression_ratio", nullptr},
        {"config_groups",
         llvm::json::Object{{"group_0", llvm::json::Object{{"targets", llvm::json::Array{"Linear"}},
                                                           {"weights", std::move(weights)},
                                                           {"input_activations", nullptr},
                                                           {"output_activations", nullptr}}}}},
        {"ignore", std::move(ignore)},
        {"kv_cache_scheme", nullptr},
        {"sparsity_config", llvm::json::Object{}},
        {"version", "0.9.0"}};
  }
};

llvm::Error writeJson(const std::string &path, llvm::json::Value v) {
  std::error_code ec;
  llvm::raw_fd_ostream os(path, ec, llvm::sys::fs::OF_Text);
  if (ec)
    return llvm::createStringError(ec, "%s: cannot write: %s", path.c_str(),
                                   ec.message().c_str());
  os << llvm::formatv("{0:2}", v) << "\n";
  return llvm::Error::success();
}

} // namespace

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  cl::HideUnrelatedOptions(genCat);
  cl::ParseCommandLineOptions(argc, argv,
                              "qlc-make-checkpoint: a small random quantized HF-style checkpoint\n");
  Generator g;
  g.scheme = scheme;
  if (g.scheme != "awq" && g.scheme != "gptq" && g.scheme != "ct" && g.scheme != "w8a8" &&
      g.scheme != "dense")
    return fail("--scheme must be awq, gptq, ct, w8a8 or dense, not '" + scheme + "'");
  g.bits = bitsOpt ? bitsOpt : (g.scheme == "w8a8" ? 8 : 4);
  g.group = groupOpt;
  g.descAct = descAct;
  if (symOpt && asymOpt)
    return fail("--sym and --asym exclude each other");
  g.sym = !asymOpt;
  if (formatOpt != "v1" && formatOpt != "v2")
    return fail("--format must be v1 or v2");
  g.v2 = formatOpt == "v2";
  g.rng.seed(seed);
  int64_t h = hidden, inter = intermediate, e = moe;
  if (h <= 0 || inter <= 0 || layers < 0 || vocab <= 0 || e < 0 || shards == 0)
    return fail("sizes must be positive");
  // Scheme constraints, checked with the codecs' own validators.
  for (auto [k, n] : {std::pair{h, h}, std::pair{h, inter}, std::pair{inter, h}}) {
    std::optional<std::string> err;
    if (g.scheme == "awq") {
      if (symOpt)
        return fail("AWQ GEMM checkpoints are always asymmetric (zero_point = true)");
      err = awq::validate(k, n, g.group, g.bits);
    } else if (g.scheme == "gptq") {
      gptq::Config c;
      c.bits = g.bits;
      c.groupSize = g.group;
      c.sym = g.sym;
      c.format = g.v2 ? gptq::Format::V2 : gptq::Format::V1;
      err = gptq::validate(k, n, c, /*requireKMultipleOfG=*/true);
    } else if (g.scheme == "ct") {
      ct::Config c;
      c.bits = g.bits;
      c.strategy = g.group == -1 ? ct::Strategy::Channel : ct::Strategy::Group;
      c.groupSize = g.group;
      c.symmetric = g.sym;
      err = ct::validate(k, n, c);
    } else if (g.scheme == "w8a8") {
      if (g.bits != 8)
        return fail("w8a8 has 8-bit weights");
      err = w8a8::validate(k, n);
    }
    if (err)
      return fail("[N, K] = [" + llvm::Twine(n) + ", " + llvm::Twine(k) + "]: " + *err);
  }
  if (g.descAct && g.scheme != "gptq" && g.scheme != "ct")
    return fail("--desc-act applies to gptq and ct");

  g.dense("model.embed_tokens.weight", {vocab, h}, g.random(vocab * h));
  for (int64_t l = 0; l < layers; ++l) {
    std::string p = "model.layers." + std::to_string(l) + ".";
    g.norm(p + "input_layernorm.weight", h);
    for (const char *proj : {"q_proj", "k_proj", "v_proj", "o_proj"})
      g.linear(p + "self_attn." + proj, h, h, true);
    if (e > 0) {
      g.linear(p + "mlp.gate", e, h, false); // the router stays dense
      for (int64_t x = 0; x < e; ++x) {
        std::string ex = p + "mlp.experts." + std::to_string(x) + ".";
        g.linear(ex + "gate_proj", inter, h, true);
        g.linear(ex + "up_proj", inter, h, true);
        g.linear(ex + "down_proj", h, inter, true);
      }
    } else {
      g.linear(p + "mlp.gate_proj", inter, h, true);
      g.linear(p + "mlp.up_proj", inter, h, true);
      g.linear(p + "mlp.down_proj", h, inter, true);
    }
    g.norm(p + "post_attention_layernorm.weight", h);
  }
  g.norm("model.norm.weight", h);
  g.linear("lm_head", vocab, h, false); // in the ignore / modules_to_not_convert lists

  if (std::error_code ec = llvm::sys::fs::create_directories(outDir.getValue()))
    return fail(outDir + ": cannot create folder: " + ec.message());
  int64_t heads = std::max<int64_t>(1, h / 32);
  llvm::json::Object config{
      {"architectures",
       llvm::json::Array{e > 0 ? "Qwen3MoeForCausalLM" : "LlamaForCausalLM"}},
      {"model_type", e > 0 ? "qwen3_moe" : "llama"},
      {"hidden_size", h},
      {"intermediate_size", inter},
      {"num_hidden_layers", layers.getValue()},
      {"num_attention_heads", heads},
      {"num_key_value_heads", heads},
      {"head_dim", h / heads},
      {"vocab_size", vocab.getValue()},
      {"rms_norm_eps", 1e-6},
      {"hidden_act", "silu"},
      {"max_position_embeddings", 2048},
      {"tie_word_embeddings", false},
      {"torch_dtype", "float16"},
  };
  if (e > 0) {
    config["num_experts"] = e;
    config["num_experts_per_tok"] = std::min<int64_t>(2, e);
    config["moe_intermediate_size"] = inter;
    config["norm_topk_prob"] = true;
  }
  if (g.scheme != "dense" && g.scheme != "w8a8")
    config["quantization_config"] = g.quantizationConfig();
  std::string dir = outDir;
  if (llvm::Error err = writeJson(dir + "/config.json", std::move(config)))
    return fail(llvm::toString(std::move(err)));
  if (g.scheme == "w8a8") {
    g.description["model_quant_type"] = "W8A8_DYNAMIC";
    g.description["version"] = "1.0.0";
    if (llvm::Error err =
            writeJson(dir + "/quant_model_description.json", std::move(g.description)))
      return fail(llvm::toString(std::move(err)));
  }
  // writeSharded splits greedily under a byte limit: the smallest limit giving <= N shards.
  uint64_t limit = (g.totalBytes + shards - 1) / shards;
  for (;; limit += std::max<uint64_t>(1, limit / 64)) {
    unsigned count = 1;
    uint64_t cur = 0;
    for (uint64_t s : g.sizes) {
      if (cur && cur + s > limit) {
        ++count;
        cur = 0;
      }
      cur += s;
    }
    if (count <= shards)
      break;
  }
  llvm::Error err = shards > 1
                        ? g.out.writeSharded(dir, limit)
                        : g.out.write(dir + "/model.safetensors");
  if (err)
    return fail(llvm::toString(std::move(err)));
  if (!writeF32.empty())
    if (llvm::Error e2 = g.f32.write(writeF32))
      return fail(llvm::toString(std::move(e2)));
  return 0;
}
