// Fuzz target: import of each safetensors scheme (import/hf_provider.cpp, schemes/*/..._import.cpp),
// verification of what it builds, and reference dequantization of every weight through the
// WeightStore. The container stays valid (qlc's own writer writes it); the fuzzer mutates what the
// schemes must check: tensor shapes, dtypes, part presence and names, part contents (g_idx range,
// zero points, scales) and the config keys that shapes are checked against.
//
// Input: byte 0 picks a template (tests/fuzz/templates.h); then 4-byte operations
// [op, tensor, a, b], `tensor` taken modulo the current tensor count:
//   0 drop the tensor                    1 dtype := kDTypes[a]        2 shape[a] := b
//   3 insert dim (b % 4 + 1) at a        4 erase dim a                5 swap names with tensor a
//   6 data[a * 131] := b                 7 fill data with byte b      8 config int key a := kInts[b]
//   9 config bool key a := b & 1         10 copy under layer/expert index b % 4
// Data resized by a dtype/shape change repeats the old bytes. Tensors are capped at 1 MiB.
#include "templates.h"

#include <algorithm>
#include <cctype>
#include <cstring>

using namespace qlc;

namespace {

using Path = std::vector<const char *>;
const Path kIntKeys[] = {
    {"quantization_config", "bits"},
    {"quantization_config", "group_size"},
    {"quantization_config", "q_group_size"},
    {"quantization_config", "w_bit"},
    {"hidden_size"},
    {"intermediate_size"},
    {"num_hidden_layers"},
    {"num_experts_per_tok"},
    {"num_local_experts"},
    {"vocab_size"},
    {"quantization_config", "config_groups", "group_0", "weights", "num_bits"},
    {"quantization_config", "config_groups", "group_0", "weights", "group_size"},
    {"quantization_config", "checkpoint_format"},
};
const Path kBoolKeys[] = {
    {"quantization_config", "sym"},
    {"quantization_config", "desc_act"},
    {"quantization_config", "zero_point"},
    {"quantization_config", "config_groups", "group_0", "weights", "symmetric"},
    {"quantization_config", "config_groups", "group_0", "weights", "dynamic"},
    {"tie_word_embeddings"},
    {"norm_topk_prob"},
};
const int64_t kInts[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 16, 32, 64, 128, 256, -1, -2, 33, 31,
                         int64_t(1) << 31, (int64_t(1) << 62) + 1, INT64_MAX, INT64_MIN, 1000, 12};
constexpr uint64_t kMaxTensorBytes = 1 << 20;

llvm::json::Value *lookupParent(llvm::json::Object &root, const Path &p) {
  llvm::json::Object *o = &root;
  for (size_t i = 0; i + 1 < p.size(); ++i) {
    o = o->getObject(p[i]);
    if (!o)
      return nullptr;
  }
  return o->get(p.back()) ? o->get(p.back()) : nullptr;
}

void setKey(llvm::json::Object &root, const Path &p, llvm::json::Value v) {
  llvm::json::Object *o = &root;
  for (size_t i = 0; i + 1 < p.size(); ++i) {
    o = o->getObject(p[i]);
    if (!o)
      return; // only keys whose parent exists in this template
  }
  (*o)[p.back()] = std::move(v);
}

/// Resizes t's bytes to its dtype x shape, repeating the old bytes; false if over the cap.
bool resize(fuzz::TemplateTensor &t) {
  uint64_t n = 1;
  for (int64_t d : t.shape)
    if (__builtin_mul_overflow(n, uint64_t(d), &n))
      return false;
  uint64_t bytes;
  if (__builtin_mul_overflow(n, uint64_t(io::dtypeSize(t.dtype)), &bytes) ||
      bytes > kMaxTensorBytes)
    return false;
  std::vector<uint8_t> out(bytes);
  for (uint64_t i = 0; i < bytes; ++i)
    out[i] = t.bytes.empty() ? uint8_t(i) : t.bytes[i % t.bytes.size()];
  t.bytes = std::move(out);
  return true;
}

std::string reindex(const std::string &name, unsigned k) {
  std::string out = name;
  for (const char *key : {"experts.", "layers."}) {
    size_t at = out.find(key);
    if (at == std::string::npos)
      continue;
    size_t b = at + std::strlen(key), e = b;
    while (e < out.size() && std::isdigit(static_cast<unsigned char>(out[e])))
      ++e;
    out.replace(b, e - b, std::to_string(k));
    return out;
  }
  return out + std::to_string(k);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  const auto &tpls = fuzz::templates();
  const fuzz::Template &tpl = tpls[data[0] % tpls.size()];
  std::vector<fuzz::TemplateTensor> ts = tpl.tensors;
  llvm::json::Object config = tpl.config;

  for (size_t i = 1; i + 4 <= size; i += 4) {
    uint8_t op = data[i] % 11, a = data[i + 2], b = data[i + 3];
    if (ts.empty())
      break;
    size_t ti = data[i + 1] % ts.size();
    fuzz::TemplateTensor &t = ts[ti];
    switch (op) {
    case 0:
      ts.erase(ts.begin() + ti);
      break;
    case 1: {
      fuzz::TemplateTensor c = t;
      c.dtype = io::DType(a % 13);
      if (resize(c))
        t = std::move(c);
      break;
    }
    case 2: {
      if (t.shape.empty())
        break;
      fuzz::TemplateTensor c = t;
      c.shape[a % c.shape.size()] = b;
      if (resize(c))
        t = std::move(c);
      break;
    }
    case 3: {
      if (t.shape.size() >= 6)
        break;
      fuzz::TemplateTensor c = t;
      c.shape.insert(c.shape.begin() + a % (c.shape.size() + 1), b % 4 + 1);
      if (resize(c))
        t = std::move(c);
      break;
    }
    case 4: {
      if (t.shape.empty())
        break;
      fuzz::TemplateTensor c = t;
      c.shape.erase(c.shape.begin() + a % c.shape.size());
      if (resize(c))
        t = std::move(c);
      break;
    }
    case 5:
      std::swap(t.name, ts[a % ts.size()].name);
      break;
    case 6:
      if (!t.bytes.empty())
        t.bytes[(size_t(a) * 131) % t.bytes.size()] = b;
      break;
    case 7:
      std::fill(t.bytes.begin(), t.bytes.end(), b);
      break;
    case 8:
      setKey(config, kIntKeys[a % std::size(kIntKeys)], kInts[b % std::size(kInts)]);
      break;
    case 9:
      if (lookupParent(config, kBoolKeys[a % std::size(kBoolKeys)]))
        setKey(config, kBoolKeys[a % std::size(kBoolKeys)], bool(b & 1));
      break;
    case 10: {
      fuzz::TemplateTensor c = t;
      c.name = reindex(t.name, b % 4);
      if (std::none_of(ts.begin(), ts.end(), [&](const auto &x) { return x.name == c.name; }))
        ts.push_back(std::move(c));
      break;
    }
    }
  }

  io::SafetensorsWriter w;
  for (const fuzz::TemplateTensor &t : ts)
    w.add(t.name, t.dtype, t.shape, t.bytes);
  static const std::string dir = fuzz::scratchPath("import");
  llvm::sys::fs::create_directories(dir);
  if (llvm::Error e = w.write(dir + "/model.safetensors")) {
    // Only a name clash can get here (the shapes and sizes are kept consistent above).
    llvm::consumeError(std::move(e));
    return 0;
  }
  std::string text;
  llvm::raw_string_ostream os(text);
  os << llvm::json::Value(std::move(config));
  os.flush();
  fuzz::writeFile(dir + "/config.json", text.data(), text.size());
  fuzz::importVerifyDequant(dir);
  return 0;
}
