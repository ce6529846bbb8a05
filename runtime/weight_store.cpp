#include "runtime/weight_store.h"

#include <cstring>

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

#include "io/dtype.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "runtime/tensor.h"

namespace qlc {

WeightStore::~WeightStore() = default;

static llvm::Error err(const llvm::Twine &msg) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), msg);
}

llvm::Expected<std::unique_ptr<WeightStore>> WeightStore::open(llvm::StringRef path) {
  std::unique_ptr<WeightStore> s(new WeightStore());
  s->path_ = path.str();
  if (path.ends_with(".gguf")) {
    auto g = io::GgufFile::open(path);
    if (!g)
      return g.takeError();
    s->gguf_ = std::move(*g);
    return s;
  }
  auto st = io::SafetensorsCheckpoint::open(path);
  if (!st)
    return st.takeError();
  s->st_ = std::move(*st);
  return s;
}

llvm::Expected<std::unique_ptr<WeightStore>> WeightStore::openForModule(const Module &m,
                                                                        llvm::StringRef moduleFile) {
  auto it = m.attrs().find("checkpoint");
  if (it == m.attrs().end())
    return std::unique_ptr<WeightStore>();
  std::string where = moduleFile.empty() ? std::string("module") : moduleFile.str();
  if (it->second.kind() != AttrKind::String)
    return err(where + ": module attribute 'checkpoint' must be a string path");
  llvm::SmallString<256> path(it->second.getString());
  if (llvm::sys::path::is_relative(path) && !moduleFile.empty()) {
    llvm::SmallString<256> base(llvm::sys::path::parent_path(moduleFile));
    llvm::sys::path::append(base, path);
    path = base;
  }
  auto s = open(path);
  if (!s)
    return err(where + ": checkpoint \"" + it->second.getString() +
               "\": " + llvm::toString(s.takeError()));
  return s;
}


llvm::Expected<llvm::ArrayRef<uint8_t>> WeightStore::tensor(llvm::StringRef name,
                                                            const TensorType &expected) const {
  auto bytes = expected.numBytes();
  if (!bytes)
    return err("tensor '" + name + "': expected type " + expected.str() + " has no static size");
  if (st_) {
    const io::TensorView *t = st_->find(name);
    if (!t)
      return err(path_ + ": no tensor '" + name + "'");
    std::string file = st_->fileOf(name).str();
    if (t->dtype != io::dtypeOf(expected.elem) || t->shape != expected.dims)
      return err(file + ": tensor '" + name + "' is " + io::safetensorsName(t->dtype) + " " +
                 dimsStr(t->shape) + " but the IR expects " + expected.str());
    return t->data;
  }
  if (gguf_) {
    const io::GgufTensorInfo *t = gguf_->findTensor(name);
    if (!t)
      return err(path_ + ": no tensor '" + name + "'");
    if (int64_t(t->data.size()) != *bytes)
      return err(path_ + ": tensor '" + name + "' has " + llvm::Twine(t->data.size()) +
                 " bytes but the IR expects " + expected.str() + " (" + llvm::Twine(*bytes) +
                 " bytes)");
    return t->data;
  }
  return err("no checkpoint is open");
}

llvm::Expected<PartBytes> resolvePart(const Weight &w, const WeightPart &p,
                                      const WeightStore *store) {
  PartBytes out;
  auto bytes = p.type.numBytes();
  if (!bytes)
    return err("weight @" + w.name() + " part '" + p.name + "' has no static size");
  if (p.isInline()) {
    if (int64_t(p.data->size()) != *bytes)
      return err("weight @" + w.name() + " part '" + p.name + "' has " +
                 llvm::Twine(p.data->size()) + " bytes of inline data, expected " +
                 llvm::Twine(*bytes));
    out.bytes = *p.data;
    return out;
  }
  if (!store)
    return err("weight @" + w.name() + " part '" + p.name + "' reads tensor '" +
               (p.sources.empty() ? std::string() : p.sources[0]) +
               "' but the module names no checkpoint (module attributes {checkpoint = \"...\"})");
  if (p.sources.size() == 1) {
    auto t = store->tensor(p.sources[0], p.type);
    if (!t)
      return t.takeError();
    out.bytes = *t;
    return out;
  }
  // Stacked from several tensors: each is one slice of the leading dim.
  TensorType slice = p.type;
  slice.dims.erase(slice.dims.begin());
  auto sliceBytes = slice.numBytes();
  out.owned = std::make_shared<std::vector<uint8_t>>();
  out.owned->reserve(size_t(*bytes));
  for (const std::string &src : p.sources) {
    auto t = store->tensor(src, slice);
    if (!t)
      return t.takeError();
    out.owned->insert(out.owned->end(), t->begin(), t->end());
  }
  (void)sliceBytes;
  out.bytes = *out.owned;
  return out;
}

/// "<checkpoint>: tensor '<name>': " when a dequantizer's message starts with the name of a part
/// read from the checkpoint (e.g. "g_idx[63] = 2 is not a group index"), so that the error names
/// the file and tensor holding the bad value; "" otherwise.
static std::string checkpointTensorOf(const Weight &w, const std::string &msg, int64_t expert,
                                      const WeightStore *store) {
  if (!store)
    return "";
  for (const WeightPart &p : w.parts()) {
    if (p.sources.empty() || msg.compare(0, p.name.size(), p.name) != 0 ||
        (msg.size() > p.name.size() && msg[p.name.size()] != '[' && msg[p.name.size()] != ' '))
      continue;
    // Stacked parts take one checkpoint tensor per expert.
    const std::string &src =
        p.sources.size() > 1 && size_t(expert) < p.sources.size() ? p.sources[size_t(expert)]
                                                                  : p.sources.front();
    std::string file = store->path();
    if (store->safetensors() && !store->safetensors()->fileOf(src).empty())
      file = store->safetensors()->fileOf(src).str();
    return file + ": tensor '" + src + "': ";
  }
  return "";
}

llvm::Expected<std::vector<float>> dequantizeWeight(const Weight &w, const WeightStore *store) {
  if (w.isDense()) {
    if (w.parts().size() != 1)
      return err("dense weight @" + w.name() + " must have exactly one part");
    auto pb = resolvePart(w, w.parts()[0], store);
    if (!pb)
      return pb.takeError();
    const TensorType &t = w.denseType();
    Tensor tmp(t.elem, t.dims);
    if (tmp.numBytes()) // an empty weight has no buffer: memcpy(nullptr, ..., 0) is UB
      std::memcpy(tmp.data(), pb->bytes.data(), tmp.numBytes());
    return tmp.toF32();
  }
  const WeightType &qt = w.quantType();
  if (!qt.def->dequantize)
    return err("weight type !" + qt.mnemonic() + " has no reference dequantizer");
  std::vector<PartBytes> keep;
  PartBytesMap all;
  for (const WeightPart &p : w.parts()) {
    auto pb = resolvePart(w, p, store);
    if (!pb)
      return pb.takeError();
    keep.push_back(*pb);
    all[p.name] = PartView{p.type.elem, keep.back().bytes};
  }
  std::vector<int64_t> shape = qt.def->logicalShape(qt);
  int64_t perExpert = 1;
  for (int64_t d : shape)
    perExpert *= d;
  int64_t experts = std::max<int64_t>(1, qt.experts());
  std::vector<float> out(size_t(perExpert * experts));
  for (int64_t e = 0; e < experts; ++e) {
    PartBytesMap slice;
    for (const auto &[name, view] : all) {
      size_t n = view.bytes.size() / size_t(experts);
      slice[name] = PartView{view.elem, view.bytes.slice(size_t(e) * n, n)};
    }
    std::string msg = qt.def->dequantize(qt, slice, out.data() + e * perExpert);
    if (!msg.empty())
      return err(checkpointTensorOf(w, msg, e, store) + "weight @" + w.name() +
                 (qt.experts() ? " expert " + std::to_string(e) : "") + ": " + msg);
  }
  return out;
}

} // namespace qlc
