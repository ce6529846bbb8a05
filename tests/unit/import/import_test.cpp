// Import of awq / gptq / compressed-tensors / w8a8 safetensors checkpoints: random f32 weights are
// quantized with the codecs, written with the project's safetensors writer, imported, and every
// weight dequantized through a WeightStore is compared with (a) the codec's own dequantization of
// the same tensors (bit-exact) and (b) the f32 original (within the scheme's error bound).
#include <gtest/gtest.h>

#include <cstring>
#include <numeric>
#include <random>

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/raw_ostream.h"

#include "import/importer.h"
#include "io/safetensors.h"
#include "ir/diagnostics.h"
#include "ir/op_registry.h"
#include "ir/verifier.h"
#include "runtime/weight_store.h"
#include "schemes/all_schemes.h"
#include "schemes/awq/codec.h"
#include "schemes/compressed_tensors/codec.h"
#include "schemes/gptq/codec.h"
#include "schemes/w8a8/codec.h"
#include "support/float16.h"

using namespace qlc;

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    llvm::SmallString<128> p;
    EXPECT_FALSE(llvm::sys::fs::createUniqueDirectory("qlc-import", p));
    path = std::string(p);
  }
  ~TempDir() { llvm::sys::fs::remove_directories(path); }
};

template <class T> std::vector<uint8_t> bytesOf(const std::vector<T> &v) {
  const uint8_t *p = reinterpret_cast<const uint8_t *>(v.data());
  return std::vector<uint8_t>(p, p + v.size() * sizeof(T));
}

struct Case {
  std::string scheme; // awq, gptq, ct, w8a8
  int bits = 4;
  int64_t group = 32; // -1: one group (ct: strategy channel)
  bool sym = true;
  bool actOrder = false;
  bool v2 = false;
  int64_t experts = 0;
  unsigned shards = 1;

  std::string label() const {
    std::string s = scheme + "_b" + std::to_string(bits) + "_g" +
                    (group == -1 ? std::string("m1") : std::to_string(group)) +
                    (sym ? "_sym" : "_asym") + (actOrder ? "_act" : "") + (v2 ? "_v2" : "") +
                    (experts ? "_moe" + std::to_string(experts) : "") +
                    (shards > 1 ? "_sh" + std::to_string(shards) : "");
    return s;
  }
};

void PrintTo(const Case &c, std::ostream *os) { *os << c.label(); }

struct Entry {
  std::string name;
  io::DType dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

/// What the test knows about one quantized Linear.
struct Expect {
  std::vector<float> original; // f32 [N, K]
  std::vector<float> codec;    // the codec's dequantization [N, K]
  std::vector<float> bound;    // per-element error bound vs the original
};

/// A one-layer model: embed, norms, q/k/v/o, an MLP or an MoE (router + experts), lm_head.
struct Model {
  static constexpr int64_t H = 64, I = 128, IE = 64, V = 96;
  Case c;
  std::vector<Entry> tensors;
  llvm::json::Object config;                // config.json
  llvm::json::Object description;           // w8a8: quant_model_description.json
  std::map<std::string, Expect> linears;    // by checkpoint prefix
  std::mt19937_64 rng{1234};

  explicit Model(Case cs) : c(std::move(cs)) { build(); }

  std::vector<float> random(int64_t n, float mean = 0.0f) {
    std::normal_distribution<float> nd(mean, 0.02f);
    std::vector<float> v(static_cast<size_t>(n), 0.0f);
    for (float &x : v)
      x = nd(rng);
    return v;
  }
  void add(std::string name, io::DType dt, std::vector<int64_t> shape, std::vector<uint8_t> b) {
    tensors.push_back({std::move(name), dt, std::move(shape), std::move(b)});
  }
  void dense(const std::string &name, std::vector<int64_t> shape, float mean = 0.0f) {
    int64_t n = 1;
    for (int64_t d : shape)
      n *= d;
    std::vector<float> w = random(n, mean);
    std::vector<uint16_t> h(w.size());
    for (size_t i = 0; i < w.size(); ++i)
      h[i] = floatToHalf(w[i]);
    add(name, io::DType::F16, shape, bytesOf(h));
    description[name] = "FLOAT";
  }
  std::vector<int32_t> perm(int64_t k) {
    std::vector<int32_t> p(static_cast<size_t>(k), 0);
    std::iota(p.begin(), p.end(), 0);
    std::shuffle(p.begin(), p.end(), rng);
    return p;
  }

  void linear(const std::string &prefix, int64_t n, int64_t k) {
    Expect ex;
    ex.original = random(n * k);
    const std::vector<float> &w = ex.original;
    ex.codec.resize(size_t(n * k));
    ex.bound.resize(size_t(n * k));
    if (c.scheme == "awq") {
      awq::Checkpoint q = awq::quantize(w, k, n, c.group, c.bits);
      int64_t groups = c.group == -1 ? 1 : k / c.group, words = n * c.bits / 32;
      int64_t g = c.group == -1 ? k : c.group;
      add(prefix + ".qweight", io::DType::I32, {k, words}, bytesOf(q.qweight));
      add(prefix + ".qzeros", io::DType::I32, {groups, words}, bytesOf(q.qzeros));
      add(prefix + ".scales", io::DType::F16, {groups, n}, bytesOf(q.scales));
      awq::dequantize(q.qweight, q.qzeros, q.scales, k, n, c.group, ex.codec, c.bits);
      for (int64_t r = 0; r < n; ++r)
        for (int64_t col = 0; col < k; ++col)
          ex.bound[r * k + col] = halfToFloat(q.scales[(col / g) * n + r]);
    } else if (c.scheme == "gptq") {
      gptq::Config cfg;
      cfg.bits = c.bits;
      cfg.groupSize = c.group;
      cfg.sym = c.sym;
      cfg.format = c.v2 ? gptq::Format::V2 : gptq::Format::V1;
      std::vector<int32_t> p = c.actOrder ? perm(k) : std::vector<int32_t>{};
      gptq::Checkpoint q = gptq::quantize(w, k, n, cfg, p);
      int64_t groups = gptq::numGroups(k, c.group), g = c.group == -1 ? k : c.group;
      std::vector<int32_t> gIdx = q.gIdx.empty() ? gptq::sequentialGIdx(k, c.group) : q.gIdx;
      add(prefix + ".qweight", io::DType::I32, {gptq::qweightRows(k, c.bits), n},
          bytesOf(q.qweight));
      add(prefix + ".qzeros", io::DType::I32, {groups, gptq::qzerosCols(n, c.bits)},
          bytesOf(q.qzeros));
      add(prefix + ".scales", io::DType::F16, {groups, n}, bytesOf(q.scales));
      add(prefix + ".g_idx", io::DType::I32, {k}, bytesOf(gIdx));
      gptq::dequantize(q.qweight, q.qzeros, q.scales, c.actOrder ? gIdx : std::vector<int32_t>{},
                       k, n, cfg, ex.codec);
      for (int64_t r = 0; r < n; ++r)
        for (int64_t col = 0; col < k; ++col) {
          int64_t grp = c.actOrder ? gIdx[col] : col / g;
          ex.bound[r * k + col] = halfToFloat(q.scales[grp * n + r]);
        }
    } else if (c.scheme == "ct") {
      ct::Config cfg;
      cfg.bits = c.bits;
      cfg.strategy = c.group == -1 ? ct::Strategy::Channel : ct::Strategy::Group;
      cfg.groupSize = c.group;
      cfg.symmetric = c.sym;
      std::vector<int32_t> p = c.actOrder ? perm(k) : std::vector<int32_t>{};
      ct::Checkpoint q = ct::quantize(w, k, n, cfg, p);
      int64_t pf = 32 / c.bits, groups = ct::numGroups(k, cfg);
      add(prefix + ".weight_packed", io::DType::I32, {n, (k + pf - 1) / pf},
          bytesOf(q.weightPacked));
      add(prefix + ".weight_scale", io::DType::F16, {n, groups}, bytesOf(q.weightScale));
      if (!c.sym)
        add(prefix + ".weight_zero_point", io::DType::I32, {(n + pf - 1) / pf, groups},
            bytesOf(q.weightZeroPoint));
      if (c.actOrder)
        add(prefix + ".weight_g_idx", io::DType::I32, {k}, bytesOf(q.weightGIdx));
      add(prefix + ".weight_shape", io::DType::I64, {2}, bytesOf(q.weightShape));
      std::vector<float> s = ct::decodeScales(q.weightScale, ct::ScaleType::F16);
      ct::dequantize(q.weightPacked, s, q.weightZeroPoint, q.weightGIdx, k, n, cfg, ex.codec);
      for (int64_t r = 0; r < n; ++r)
        for (int64_t col = 0; col < k; ++col) {
          int64_t grp = c.actOrder ? q.weightGIdx[col] : ct::groupOf(col, k, cfg);
          ex.bound[r * k + col] = s[r * groups + grp];
        }
    } else { // w8a8
      w8a8::Checkpoint q = w8a8::quantize(w, k, n);
      add(prefix + ".weight", io::DType::I8, {n, k}, bytesOf(q.weight));
      add(prefix + ".weight_scale", io::DType::F32, {n, 1}, bytesOf(q.weightScale));
      add(prefix + ".weight_offset", io::DType::F32, {n, 1}, bytesOf(q.weightOffset));
      description[prefix + ".weight"] = "W8A8_DYNAMIC";
      description[prefix + ".weight_scale"] = "W8A8_DYNAMIC";
      description[prefix + ".weight_offset"] = "W8A8_DYNAMIC";
      w8a8::dequantize(q.weight, q.weightScale, k, n, ex.codec);
      for (int64_t r = 0; r < n; ++r)
        for (int64_t col = 0; col < k; ++col)
          ex.bound[r * k + col] = q.weightScale[r];
    }
    // Rounding to the grid costs at most s/2; clamping at the range ends costs at most one step
    // s, times (1 + 2^(b-1)·2^-11) when the scale was rounded down to fp16 (compressed-tensors
    // symmetric: max|w| = 2^(b-1)·s_exact is clamped to code 2^(b-1) − 1).
    float slack = 1.0f + float(1 << (c.bits - 1)) / 2048.0f + 1e-4f;
    for (float &b : ex.bound)
      b = b * slack + 1e-7f;
    linears[prefix] = std::move(ex);
  }

  void build() {
    dense("model.embed_tokens.weight", {V, H});
    const std::string p = "model.layers.0.";
    dense(p + "input_layernorm.weight", {H}, 1.0f);
    for (const char *proj : {"q_proj", "k_proj", "v_proj", "o_proj"})
      linear(p + "self_attn." + proj, H, H);
    if (c.experts) {
      dense(p + "mlp.gate.weight", {c.experts, H});
      for (int64_t e = 0; e < c.experts; ++e) {
        std::string ex = p + "mlp.experts." + std::to_string(e) + ".";
        linear(ex + "gate_proj", IE, H);
        linear(ex + "up_proj", IE, H);
        linear(ex + "down_proj", H, IE);
      }
    } else {
      linear(p + "mlp.gate_proj", I, H);
      linear(p + "mlp.up_proj", I, H);
      linear(p + "mlp.down_proj", H, I);
    }
    dense(p + "post_attention_layernorm.weight", {H}, 1.0f);
    dense("model.norm.weight", {H}, 1.0f);
    dense("lm_head.weight", {V, H});

    config = llvm::json::Object{{"model_type", c.experts ? "qwen3_moe" : "llama"},
                                {"num_hidden_layers", 1},
                                {"hidden_size", H},
                                {"intermediate_size", I},
                                {"rms_norm_eps", 1e-6}};
    if (c.experts) {
      config["num_experts"] = c.experts;
      config["num_experts_per_tok"] = 2;
      config["moe_intermediate_size"] = IE;
    }
    if (c.scheme == "awq")
      config["quantization_config"] =
          llvm::json::Object{{"quant_method", "awq"},        {"zero_point", true},
                             {"group_size", c.group},        {"bits", c.bits},
                             {"version", "GEMM"},            // AutoAWQ examples write upper case
                             {"modules_to_not_convert", llvm::json::Array{"lm_head"}}};
    else if (c.scheme == "gptq")
      config["quantization_config"] =
          llvm::json::Object{{"bits", c.bits},
                             {"group_size", c.group},
                             {"desc_act", c.actOrder},
                             {"sym", c.sym},
                             {"quant_method", "gptq"},
                             {"checkpoint_format", c.v2 ? "gptq_v2" : "gptq"}};
    else if (c.scheme == "ct") {
      llvm::json::Object w{{"num_bits", c.bits},
                           {"type", "int"},
                           {"symmetric", c.sym},
                           {"strategy", c.group == -1 ? "channel" : "group"},
                           {"group_size", c.group == -1 ? llvm::json::Value(nullptr)
                                                        : llvm::json::Value(c.group)},
                           {"dynamic", false},
                           {"actorder", c.actOrder ? llvm::json::Value("group")
                                                   : llvm::json::Value(nullptr)}};
      config["quantization_config"] = llvm::json::Object{
          {"quant_method", "compressed-tensors"},
          {"format", "pack-quantized"},
          {"quantization_status", "compressed"},
          {"config_groups",
           llvm::json::Object{{"group_0", llvm::json::Object{{"targets", llvm::json::Array{"Linear"}},
                                                             {"weights", std::move(w)},
                                                             {"input_activations", nullptr}}}}},
          {"ignore", llvm::json::Array{"lm_head", "re:.*mlp\\.gate$"}}};
    }
  }

  llvm::json::Object *quant() { return config.getObject("quantization_config"); }
  Entry *find(const std::string &name) {
    for (Entry &e : tensors)
      if (e.name == name)
        return &e;
    return nullptr;
  }
  void erase(const std::string &name) {
    tensors.erase(std::remove_if(tensors.begin(), tensors.end(),
                                 [&](const Entry &e) { return e.name == name; }),
                  tensors.end());
  }

  void write(const std::string &dir) const {
    auto writeJson = [](const std::string &path, const llvm::json::Object &o) {
      std::error_code ec;
      llvm::raw_fd_ostream os(path, ec);
      ASSERT_FALSE(ec);
      os << llvm::formatv("{0:2}", llvm::json::Value(llvm::json::Object(o)));
    };
    writeJson(dir + "/config.json", config);
    if (c.scheme == "w8a8")
      writeJson(dir + "/quant_model_description.json", description);
    io::SafetensorsWriter wr;
    uint64_t total = 0;
    for (const Entry &e : tensors) {
      wr.add(e.name, e.dtype, e.shape, e.bytes);
      total += e.bytes.size();
    }
    llvm::Error err = c.shards > 1 ? wr.writeSharded(dir, total / c.shards + 1)
                                   : wr.write(dir + "/model.safetensors");
    ASSERT_FALSE(bool(err)) << llvm::toString(std::move(err));
  }
};

class ImportEnv : public ::testing::Environment {
public:
  void SetUp() override {
    registerCoreOps();
    schemes::registerAllSchemes();
  }
};
const auto *env = ::testing::AddGlobalTestEnvironment(new ImportEnv);

/// The printed type of one (plain) quantized linear of [N, K].
std::string expectedType(const Case &c, int64_t n, int64_t k, int64_t experts) {
  std::string shape = "shape = [" + std::to_string(n) + ", " + std::to_string(k) + "]" +
                      (experts ? ", experts = " + std::to_string(experts) : "");
  std::string g = std::to_string(c.group);
  if (c.scheme == "awq")
    return "!awq<" + (c.bits == 4 ? std::string() : "bits = " + std::to_string(c.bits) + ", ") +
           "group = " + g + ", " + shape + ">"; // bits = 4 is the default
  if (c.scheme == "gptq")
    return "!gptq<bits = " + std::to_string(c.bits) + ", group = " + g +
           (c.sym ? "" : ", sym = false") + (c.v2 ? ", format = v2" : "") +
           (c.actOrder ? ", desc_act = true" : "") + ", " + shape + ">";
  if (c.scheme == "ct")
    return "!ct_wna16<bits = " + std::to_string(c.bits) +
           (c.group == -1 ? ", strategy = channel" : ", group = " + g) +
           (c.sym ? "" : ", symmetric = false") + (c.actOrder ? ", actorder = group" : "") +
           ", " + shape + ">";
  return "!w8a8<" + shape + ">";
}

std::string importErrorOf(const Model &m) {
  TempDir d;
  m.write(d.path);
  auto mod = importCheckpoint(d.path);
  if (mod)
    return "(imported without error)";
  return llvm::toString(mod.takeError());
}

class ImportRoundTrip : public ::testing::TestWithParam<Case> {};

TEST_P(ImportRoundTrip, DequantMatchesCodecAndOriginal) {
  const Case &c = GetParam();
  Model model(c);
  TempDir dir;
  model.write(dir.path);
  auto modOr = importCheckpoint(dir.path);
  ASSERT_TRUE(bool(modOr)) << llvm::toString(modOr.takeError());
  Module &m = **modOr;
  DiagnosticEngine diag;
  ASSERT_FALSE(llvm::failed(verifyModule(m, diag)));

  // Weight count: embed, 2 layer norms, q/k/v/o, gate/up/down (stacked for MoE) [+ router],
  // final norm, lm_head.
  EXPECT_EQ(m.weights().size(), size_t(12 + (c.experts ? 1 : 0)));
  for (const char *d : {"model.embed_tokens", "lm_head", "model.norm",
                        "model.layers.0.input_layernorm"}) {
    const Weight *w = m.lookupWeight(d);
    ASSERT_NE(w, nullptr) << d;
    EXPECT_TRUE(w->isDense()) << d << " must stay dense (ignored / not a Linear)";
  }
  if (c.experts) {
    const Weight *r = m.lookupWeight("model.layers.0.mlp.gate");
    ASSERT_NE(r, nullptr);
    EXPECT_TRUE(r->isDense());
    EXPECT_NE(m.lookupFunction("model.layers.0.moe"), nullptr);
  } else {
    EXPECT_NE(m.lookupFunction("model.layers.0.mlp"), nullptr);
  }

  auto storeOr = WeightStore::openForModule(m);
  ASSERT_TRUE(bool(storeOr)) << llvm::toString(storeOr.takeError());
  const WeightStore *store = storeOr->get();
  ASSERT_NE(store, nullptr);
  ASSERT_NE(store->safetensors(), nullptr);

  // Every quantized module: type, sources, zero-copy parts, dequantization.
  std::vector<std::pair<std::string, std::vector<std::string>>> mods; // weight -> prefixes
  const std::string p = "model.layers.0.";
  for (const char *proj : {"q_proj", "k_proj", "v_proj", "o_proj"})
    mods.push_back({p + "self_attn." + proj, {p + "self_attn." + proj}});
  for (const char *proj : {"gate_proj", "up_proj", "down_proj"}) {
    if (!c.experts) {
      mods.push_back({p + "mlp." + proj, {p + "mlp." + proj}});
      continue;
    }
    std::vector<std::string> ps;
    for (int64_t e = 0; e < c.experts; ++e)
      ps.push_back(p + "mlp.experts." + std::to_string(e) + "." + proj);
    mods.push_back({p + "mlp.experts." + proj, ps});
  }
  for (const auto &[name, prefixes] : mods) {
    SCOPED_TRACE(name);
    const Weight *w = m.lookupWeight(name);
    ASSERT_NE(w, nullptr);
    ASSERT_FALSE(w->isDense());
    const Expect &first = model.linears.at(prefixes[0]);
    int64_t stacked = name.find(".experts.") != std::string::npos ? c.experts : 0;
    std::vector<int64_t> shape = w->quantType().def->logicalShape(w->quantType());
    ASSERT_EQ(shape.size(), 2u);
    EXPECT_EQ(weightSymbolTypeStr(w->type()),
              expectedType(c, shape[0], shape[1], stacked));
    EXPECT_EQ(size_t(shape[0] * shape[1]), first.original.size());
    EXPECT_EQ(w->quantType().experts(), stacked);
    for (const WeightPart &part : w->parts()) {
      EXPECT_FALSE(part.isInline()) << part.name << ": imported data must not be copied";
      ASSERT_EQ(part.sources.size(), prefixes.size()) << part.name;
      for (size_t e = 0; e < prefixes.size(); ++e)
        EXPECT_EQ(part.sources[e], prefixes[e] + "." + part.name);
      if (part.sources.size() == 1) { // zero copy: the bytes are the mapped file's
        auto pb = resolvePart(*w, part, store);
        ASSERT_TRUE(bool(pb)) << llvm::toString(pb.takeError());
        const io::TensorView *tv = store->safetensors()->find(part.sources[0]);
        ASSERT_NE(tv, nullptr);
        EXPECT_EQ(pb->owned, nullptr);
        EXPECT_EQ(pb->bytes.data(), tv->data.data()) << part.name;
        EXPECT_EQ(pb->bytes.size(), tv->data.size());
      }
    }
    auto dq = dequantizeWeight(*w, store);
    ASSERT_TRUE(bool(dq)) << llvm::toString(dq.takeError());
    size_t per = first.original.size();
    ASSERT_EQ(dq->size(), per * prefixes.size());
    for (size_t e = 0; e < prefixes.size(); ++e) {
      const Expect &ex = model.linears.at(prefixes[e]);
      size_t codecMismatch = 0, outOfBound = 0;
      float worst = 0;
      for (size_t i = 0; i < per; ++i) {
        float v = (*dq)[e * per + i];
        if (std::memcmp(&v, &ex.codec[i], 4) != 0)
          ++codecMismatch;
        float err = std::fabs(v - ex.original[i]);
        if (!(err <= ex.bound[i]))
          ++outOfBound;
        worst = std::max(worst, err / ex.bound[i]);
      }
      EXPECT_EQ(codecMismatch, 0u) << "expert " << e << ": not bit-exact with the codec";
      EXPECT_EQ(outOfBound, 0u) << "expert " << e << ": worst |err| / bound = " << worst;
    }
  }
}

std::vector<Case> allCases() {
  std::vector<Case> v;
  for (int64_t e : {0, 3}) {
    // AWQ: 4-bit GEMM (and 8-bit awq_marlin input), groups 32, 64, one group.
    for (int64_t g : {32, 64, -1})
      v.push_back({"awq", 4, g, false, false, false, e});
    v.push_back({"awq", 8, 32, false, false, false, e});
    // GPTQ: every width, group or one group, sym/asym, act-order, v1/v2 (MoE: a subset).
    for (int bits : {2, 3, 4, 8})
      for (int64_t g : {32, -1})
        for (bool sym : {true, false})
          for (bool act : {false, true})
            for (bool v2 : {false, true})
              if (!e || (bits == 4 && g == 32))
                v.push_back({"gptq", bits, g, sym, act, v2, e});
    // compressed-tensors: 4/8 bits, group or channel, sym/asym, actorder group.
    for (int bits : {4, 8})
      for (int64_t g : {32, -1})
        for (bool sym : {true, false})
          for (bool act : {false, true})
            if (!(act && g == -1))
              v.push_back({"ct", bits, g, sym, act, false, e});
    v.push_back({"w8a8", 8, -1, true, false, false, e});
  }
  // Sharded checkpoints.
  v.push_back({"awq", 4, 32, false, false, false, 3, 3});
  v.push_back({"ct", 4, 32, false, false, false, 2, 4});
  return v;
}

INSTANTIATE_TEST_SUITE_P(Schemes, ImportRoundTrip, ::testing::ValuesIn(allCases()),
                         [](const ::testing::TestParamInfo<Case> &i) { return i.param.label(); });

//===----------------------------------------------------------------------===//
// Printed IR and MoE stacking
//===----------------------------------------------------------------------===//

TEST(Import, CtAsymmetricMoePrintsStackedTypes) {
  Case c{"ct", 4, 32, false, false, false, 2};
  Model model(c);
  TempDir dir;
  model.write(dir.path);
  auto m = importCheckpoint(dir.path);
  ASSERT_TRUE(bool(m)) << llvm::toString(m.takeError());
  const Weight *w = (*m)->lookupWeight("model.layers.0.mlp.experts.down_proj");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(weightSymbolTypeStr(w->type()),
            "!ct_wna16<bits = 4, group = 32, symmetric = false, shape = [64, 64], experts = 2>");
  const Weight *q = (*m)->lookupWeight("model.layers.0.self_attn.q_proj");
  EXPECT_EQ(weightSymbolTypeStr(q->type()),
            "!ct_wna16<bits = 4, group = 32, symmetric = false, shape = [64, 64]>");
  bool sawZp = false;
  for (const WeightPart &p : w->parts())
    if (p.name == "weight_zero_point") {
      sawZp = true;
      EXPECT_EQ(p.type.str(), "tensor<2x8x2xi32>");
      EXPECT_EQ(p.sources, (std::vector<std::string>{
                               "model.layers.0.mlp.experts.0.down_proj.weight_zero_point",
                               "model.layers.0.mlp.experts.1.down_proj.weight_zero_point"}));
    }
  EXPECT_TRUE(sawZp);
}

TEST(Import, LegacyQuantizeConfigJson) {
  // AutoGPTQ's quantize_config.json next to a config.json without quantization_config.
  Case c{"gptq", 4, 32, true, false, false, 0};
  Model model(c);
  llvm::json::Object q = *model.quant();
  q.erase("quant_method");
  model.config.erase("quantization_config");
  TempDir dir;
  model.write(dir.path);
  {
    std::error_code ec;
    llvm::raw_fd_ostream os(dir.path + "/quantize_config.json", ec);
    os << llvm::formatv("{0}", llvm::json::Value(std::move(q)));
  }
  auto m = importCheckpoint(dir.path);
  ASSERT_TRUE(bool(m)) << llvm::toString(m.takeError());
  EXPECT_EQ(weightSymbolTypeStr((*m)->lookupWeight("model.layers.0.mlp.up_proj")->type()),
            "!gptq<bits = 4, group = 32, shape = [128, 64]>");
}

TEST(Import, AwqModulesToNotConvertStayDense) {
  Case c{"awq", 4, 32, false, false, false, 0};
  Model model(c);
  // Substring match: "self_attn" keeps all attention projections dense (their f16 .weight is
  // written next to the quantized tensors, as a mixed checkpoint would have it).
  (*model.quant())["modules_to_not_convert"] = llvm::json::Array{"lm_head", "self_attn"};
  for (const char *proj : {"q_proj", "k_proj", "v_proj", "o_proj"}) {
    std::string pre = std::string("model.layers.0.self_attn.") + proj;
    for (const char *s : {".qweight", ".qzeros", ".scales"})
      model.erase(pre + s);
    std::vector<uint16_t> h(64 * 64, floatToHalf(0.01f));
    model.add(pre + ".weight", io::DType::F16, {64, 64}, bytesOf(h));
  }
  TempDir dir;
  model.write(dir.path);
  auto m = importCheckpoint(dir.path);
  ASSERT_TRUE(bool(m)) << llvm::toString(m.takeError());
  EXPECT_TRUE((*m)->lookupWeight("model.layers.0.self_attn.k_proj")->isDense());
  EXPECT_FALSE((*m)->lookupWeight("model.layers.0.mlp.down_proj")->isDense());
}

TEST(Import, CtIgnoreRegexAndWeightShapeI32) {
  Case c{"ct", 4, 32, true, false, false, 0};
  Model model(c);
  // weight_shape as int32 (compression_param_info's declaration) is accepted too.
  for (Entry &e : model.tensors)
    if (llvm::StringRef(e.name).ends_with(".weight_shape")) {
      int64_t v[2];
      std::memcpy(v, e.bytes.data(), 16);
      std::vector<int32_t> s{int32_t(v[0]), int32_t(v[1])};
      e.dtype = io::DType::I32;
      e.bytes = bytesOf(s);
    }
  TempDir dir;
  model.write(dir.path);
  auto m = importCheckpoint(dir.path);
  ASSERT_TRUE(bool(m)) << llvm::toString(m.takeError());
  const Weight *w = (*m)->lookupWeight("model.layers.0.mlp.down_proj");
  auto store = WeightStore::openForModule(**m);
  ASSERT_TRUE(bool(store));
  auto dq = dequantizeWeight(*w, store->get());
  ASSERT_TRUE(bool(dq)) << llvm::toString(dq.takeError());
  EXPECT_EQ(*dq, model.linears.at("model.layers.0.mlp.down_proj").codec);
}

TEST(Import, W8a8FloatEntriesStayDense) {
  Case c{"w8a8", 8, -1, true, false, false, 0};
  Model model(c);
  TempDir dir;
  model.write(dir.path);
  auto m = importCheckpoint(dir.path);
  ASSERT_TRUE(bool(m)) << llvm::toString(m.takeError());
  EXPECT_EQ(weightSymbolTypeStr((*m)->lookupWeight("model.layers.0.mlp.gate_proj")->type()),
            "!w8a8<shape = [128, 64]>");
  EXPECT_TRUE((*m)->lookupWeight("lm_head")->isDense());
}

//===----------------------------------------------------------------------===//
// Bad input: each with its message
//===----------------------------------------------------------------------===//

#define EXPECT_HAS(msg, sub) EXPECT_NE((msg).find(sub), std::string::npos) << (msg)

TEST(ImportErrors, UnknownQuantMethod) {
  Model model(Case{"awq", 4, 32, false});
  (*model.quant())["quant_method"] = "bitsandbytes";
  std::string e = importErrorOf(model);
  EXPECT_HAS(e, "config.json: unknown quant_method 'bitsandbytes'");
  EXPECT_HAS(e, "awq");
}

TEST(ImportErrors, AwqVersionGemv) {
  Model model(Case{"awq", 4, 32, false});
  (*model.quant())["version"] = "GEMV";
  std::string e = importErrorOf(model);
  EXPECT_HAS(e, "config.json: AWQ version 'gemv' is not supported");
}

TEST(ImportErrors, GptqBits5) {
  Model model(Case{"gptq", 4, 32, true});
  (*model.quant())["bits"] = 5;
  std::string e = importErrorOf(model);
  EXPECT_HAS(e, "config.json: GPTQ bits = 5 is not supported (2, 3, 4 or 8)");
}

TEST(ImportErrors, GptqMarlinFormat) {
  Model model(Case{"gptq", 4, 32, true});
  (*model.quant())["checkpoint_format"] = "marlin";
  EXPECT_HAS(importErrorOf(model), "GPTQ checkpoint_format 'marlin' is not supported yet");
  Model legacy(Case{"gptq", 4, 32, true});
  (*legacy.quant())["is_marlin_format"] = true;
  EXPECT_HAS(importErrorOf(legacy), "'marlin' is not supported yet");
}

TEST(ImportErrors, CtFloatQuantized) {
  Model model(Case{"ct", 4, 32, true});
  (*model.quant())["format"] = "float-quantized";
  std::string e = importErrorOf(model);
  EXPECT_HAS(e, "config.json: config_groups.group_0: compressed-tensors format 'float-quantized' "
                "is not supported (qlc reads pack-quantized)");
}

TEST(ImportErrors, MissingQzeros) {
  Model model(Case{"awq", 4, 32, false});
  model.erase("model.layers.0.mlp.down_proj.qzeros");
  std::string e = importErrorOf(model);
  EXPECT_HAS(e, "model.safetensors: tensor 'model.layers.0.mlp.down_proj.qzeros' is missing");
}

TEST(ImportErrors, CtAsymmetricMissingZeroPoint) {
  Model model(Case{"ct", 4, 32, false});
  model.erase("model.layers.0.mlp.up_proj.weight_zero_point");
  EXPECT_HAS(importErrorOf(model),
             "tensor 'model.layers.0.mlp.up_proj.weight_zero_point' is missing");
}

TEST(ImportErrors, ScalesWithWrongRows) {
  Model model(Case{"awq", 4, 32, false});
  Entry *s = model.find("model.layers.0.mlp.down_proj.scales"); // [128/32, 64]
  ASSERT_NE(s, nullptr);
  s->shape = {3, 64};
  s->bytes.resize(3 * 64 * 2);
  std::string e = importErrorOf(model);
  EXPECT_HAS(e, "model.safetensors: tensor 'model.layers.0.mlp.down_proj.scales' has shape "
                "[3, 64], expected [4, 64] (rows = K/G = 128/32, columns = N)");
}

TEST(ImportErrors, GIdxOutOfRangeAtDequant) {
  Model model(Case{"gptq", 4, 32, true, /*actOrder=*/true});
  Entry *g = model.find("model.layers.0.mlp.gate_proj.g_idx");
  ASSERT_NE(g, nullptr);
  int32_t bad = 7; // K = 64, G = 32: groups 0..1
  std::memcpy(g->bytes.data() + 5 * 4, &bad, 4);
  TempDir dir;
  model.write(dir.path);
  auto m = importCheckpoint(dir.path);
  ASSERT_TRUE(bool(m)) << llvm::toString(m.takeError()); // the data is checked at dequant
  auto store = WeightStore::openForModule(**m);
  ASSERT_TRUE(bool(store));
  auto dq = dequantizeWeight(*(*m)->lookupWeight("model.layers.0.mlp.gate_proj"), store->get());
  ASSERT_FALSE(bool(dq));
  std::string e = llvm::toString(dq.takeError());
  EXPECT_HAS(e, "weight @model.layers.0.mlp.gate_proj: g_idx[5] = 7 is not a group index (0..1)");
}

TEST(ImportErrors, WrongQweightDtype) {
  Model model(Case{"gptq", 4, 32, true});
  Entry *q = model.find("model.layers.0.self_attn.q_proj.qweight");
  ASSERT_NE(q, nullptr);
  q->dtype = io::DType::F32;
  std::string e = importErrorOf(model);
  EXPECT_HAS(e, "model.safetensors: tensor 'model.layers.0.self_attn.q_proj.qweight' has dtype "
                "F32, expected I32");
}

TEST(ImportErrors, ExpertMissingInTheMiddle) {
  Model model(Case{"awq", 4, 32, false, false, false, 3});
  for (const char *proj : {"gate_proj", "up_proj", "down_proj"})
    for (const char *s : {".qweight", ".qzeros", ".scales"})
      model.erase(std::string("model.layers.0.mlp.experts.1.") + proj + s);
  std::string e = importErrorOf(model);
  EXPECT_HAS(e, "model.layers.0.mlp.experts.down_proj: expert 1 is missing");
}

TEST(ImportErrors, W8a8UnsupportedTypes) {
  Model model(Case{"w8a8", 8, -1, true});
  model.description["model.layers.0.mlp.up_proj.weight"] = "W8A8";
  EXPECT_HAS(importErrorOf(model), "tensor 'model.layers.0.mlp.up_proj.weight' has quant type "
                                   "'W8A8' (");
  Model fq(Case{"w8a8", 8, -1, true});
  fq.description["model.layers.0.mlp.up_proj.weight"] = "W4A4_FLATQUANT_DYNAMIC";
  EXPECT_HAS(importErrorOf(fq), "'W4A4_FLATQUANT_DYNAMIC' (");
  EXPECT_HAS(importErrorOf(fq), "which is not supported");
}

} // namespace
