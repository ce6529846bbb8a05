#include "io/safetensors.h"

#include "llvm/ADT/StringSet.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>

namespace qlc::io {

namespace {

llvm::Error fileError(llvm::StringRef path, const llvm::Twine &what) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 (path + ": " + what).str());
}

std::string quoted(llvm::StringRef s) { return ("'" + s + "'").str(); }

/// Top-level keys of a JSON object text that llvm::json already accepted, in text order.
/// Needed because llvm::json silently keeps the last of duplicate keys, while safetensors
/// (serde) rejects duplicate tensor names. Keys are returned raw (escapes not decoded).
std::vector<llvm::StringRef> scanTopLevelKeys(llvm::StringRef s) {
  std::vector<llvm::StringRef> keys;
  int depth = 0;
  bool expectKey = false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '"') {
      size_t start = i + 1, j = start;
      while (j < s.size() && s[j] != '"')
        j += (s[j] == '\\') ? 2 : 1;
      if (depth == 1 && expectKey) {
        keys.push_back(s.slice(start, std::min(j, s.size())));
        expectKey = false;
      }
      i = j;
    } else if (c == '{' || c == '[') {
      ++depth;
      expectKey = (c == '{' && depth == 1);
    } else if (c == '}' || c == ']') {
      --depth;
    } else if (c == ',' && depth == 1) {
      expectKey = true;
    }
  }
  return keys;
}

bool checkedProduct(llvm::ArrayRef<int64_t> dims, int64_t &out) {
  int64_t n = 1;
  for (int64_t d : dims)
    if (__builtin_mul_overflow(n, d, &n))
      return false;
  out = n;
  return true;
}

struct RawEntry {
  TensorView view;
  uint64_t begin = 0, end = 0;
};

} // namespace

int64_t TensorView::numElements() const {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

// ---------------------------------------------------------------------------------------------
// SafetensorsFile

llvm::Expected<std::unique_ptr<SafetensorsFile>> SafetensorsFile::open(llvm::StringRef path) {
  // mmap (no null terminator needed): importing must not copy weights.
  auto bufOr = llvm::MemoryBuffer::getFile(path, /*IsText=*/false,
                                           /*RequiresNullTerminator=*/false);
  if (!bufOr)
    return fileError(path, "cannot open: " + bufOr.getError().message());
  return openBuffer(std::move(*bufOr), path);
}

llvm::Expected<std::unique_ptr<SafetensorsFile>>
SafetensorsFile::openBuffer(std::unique_ptr<llvm::MemoryBuffer> buffer, llvm::StringRef path) {
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->path_ = path.str();
  file->buffer_ = std::move(buffer);
  const uint8_t *base = reinterpret_cast<const uint8_t *>(file->buffer_->getBufferStart());
  const uint64_t size = file->buffer_->getBufferSize();

  if (size < 8)
    return fileError(path, "file is " + llvm::Twine(size) +
                               " bytes, too short for the 8-byte safetensors header length");
  uint64_t headerLen = 0;
  for (int i = 7; i >= 0; --i)
    headerLen = headerLen << 8 | base[i];
  if (headerLen > kSafetensorsMaxHeaderBytes)
    return fileError(path, "header length " + llvm::Twine(headerLen) +
                               " exceeds the 100 MB limit (not a safetensors file?)");
  if (headerLen > size - 8)
    return fileError(path, "header length " + llvm::Twine(headerLen) +
                               " runs past the end of the file (" + llvm::Twine(size) +
                               " bytes)");
  llvm::StringRef headerText(reinterpret_cast<const char *>(base + 8), headerLen);
  const uint8_t *dataStart = base + 8 + headerLen;
  const uint64_t dataSize = size - 8 - headerLen;

  auto parsed = llvm::json::parse(headerText);
  if (!parsed)
    return fileError(path, "header is not valid JSON: " + llvm::toString(parsed.takeError()));
  const llvm::json::Object *root = parsed->getAsObject();
  if (!root)
    return fileError(path, "header JSON is not an object");

  std::vector<llvm::StringRef> rawKeys = scanTopLevelKeys(headerText);
  if (rawKeys.size() != root->size()) {
    llvm::StringSet<> seen;
    for (llvm::StringRef k : rawKeys)
      if (!seen.insert(k).second)
        return fileError(path, "duplicate tensor name " + quoted(k) + " in header");
    return fileError(path, "duplicate key in header (spelled with different escapes)");
  }

  // Visit keys in sorted order so that the first error reported does not depend on hashing.
  std::vector<std::string> names;
  for (const auto &kv : *root)
    names.push_back(kv.first.str());
  std::sort(names.begin(), names.end());

  std::vector<RawEntry> entries;
  for (const std::string &name : names) {
    const llvm::json::Value &v = *root->get(name);
    if (name == "__metadata__") {
      const llvm::json::Object *meta = v.getAsObject();
      if (!meta)
        return fileError(path, "__metadata__ is not an object");
      for (const auto &kv : *meta) {
        auto s = kv.second.getAsString();
        if (!s)
          return fileError(path, "__metadata__ value of " + quoted(kv.first) +
                                     " is not a string");
        file->metadata_[kv.first.str()] = s->str();
      }
      continue;
    }
    auto bad = [&](const llvm::Twine &what) {
      return fileError(path, "tensor " + quoted(name) + ": " + what);
    };
    const llvm::json::Object *obj = v.getAsObject();
    if (!obj)
      return bad("header entry is not an object");
    RawEntry e;
    e.view.name = name;

    auto dtypeStr = obj->getString("dtype");
    if (!dtypeStr)
      return bad("missing or non-string 'dtype'");
    auto dt = parseSafetensorsDType(*dtypeStr);
    if (!dt)
      return bad("unsupported dtype " + quoted(*dtypeStr));
    e.view.dtype = *dt;

    const llvm::json::Array *shape = obj->getArray("shape");
    if (!shape)
      return bad("missing or non-array 'shape'");
    for (const llvm::json::Value &d : *shape) {
      auto n = d.getAsInteger();
      if (!n)
        return bad("shape entry is not an integer in int64 range");
      if (*n < 0)
        return bad("negative dimension " + llvm::Twine(*n) + " in shape");
      e.view.shape.push_back(*n);
    }
    int64_t count;
    if (!checkedProduct(e.view.shape, count))
      return bad("element count of the shape overflows int64");
    uint64_t bytes;
    if (__builtin_mul_overflow(uint64_t(count), uint64_t(dtypeSize(e.view.dtype)), &bytes))
      return bad("byte size of the shape overflows");

    const llvm::json::Array *offs = obj->getArray("data_offsets");
    if (!offs || offs->size() != 2)
      return bad("'data_offsets' must be an array [begin, end]");
    auto b = (*offs)[0].getAsUINT64(), en = (*offs)[1].getAsUINT64();
    if (!b || !en)
      return bad("'data_offsets' entries must be non-negative integers");
    e.begin = *b;
    e.end = *en;
    if (e.begin > e.end)
      return bad("data_offsets begin " + llvm::Twine(e.begin) + " > end " +
                 llvm::Twine(e.end));
    if (e.end - e.begin != bytes)
      return bad("data_offsets span " + llvm::Twine(e.end - e.begin) +
                 " bytes but dtype and shape need " + llvm::Twine(bytes));
    if (e.end > dataSize)
      return bad("data_offsets [" + llvm::Twine(e.begin) + ", " + llvm::Twine(e.end) +
                 ") lie outside the data area of " + llvm::Twine(dataSize) + " bytes");
    e.view.data = llvm::ArrayRef<uint8_t>(dataStart + e.begin, bytes);
    entries.push_back(std::move(e));
  }

  std::stable_sort(entries.begin(), entries.end(), [](const RawEntry &a, const RawEntry &b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  // The reference library requires the tensors to tile the data area exactly.
  uint64_t expected = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    const RawEntry &e = entries[i];
    if (e.begin < expected)
      return fileError(path, "tensors " + quoted(entries[i - 1].view.name) + " and " +
                                 quoted(e.view.name) + " overlap");
    if (e.begin > expected)
      return fileError(path, "gap of " + llvm::Twine(e.begin - expected) +
                                 " bytes in the data area before tensor " +
                                 quoted(e.view.name));
    expected = e.end;
  }
  if (expected != dataSize)
    return fileError(path, llvm::Twine(dataSize - expected) +
                               " trailing bytes after the last tensor in the data area");

  file->dataBytes_ = dataSize;
  for (RawEntry &e : entries) {
    file->index_[e.view.name] = file->tensors_.size();
    file->tensors_.push_back(std::move(e.view));
  }
  return file;
}

const TensorView *SafetensorsFile::find(llvm::StringRef name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

// ---------------------------------------------------------------------------------------------
// SafetensorsCheckpoint

namespace {
llvm::Expected<llvm::json::Value> readJsonFile(llvm::StringRef path) {
  auto bufOr = llvm::MemoryBuffer::getFile(path, /*IsText=*/true);
  if (!bufOr)
    return fileError(path, "cannot open: " + bufOr.getError().message());
  auto v = llvm::json::parse((*bufOr)->getBuffer());
  if (!v)
    return fileError(path, "invalid JSON: " + llvm::toString(v.takeError()));
  return std::move(*v);
}
} // namespace

llvm::Error SafetensorsCheckpoint::addFile(std::unique_ptr<SafetensorsFile> f) {
  size_t idx = files_.size();
  for (const TensorView &t : f->tensors()) {
    auto [it, inserted] = index_.try_emplace(t.name, Entry{&t, idx});
    if (!inserted)
      return fileError(f->path(), "tensor " + quoted(t.name) + " is also in " +
                                      files_[it->second.file]->path());
  }
  files_.push_back(std::move(f));
  return llvm::Error::success();
}

void SafetensorsCheckpoint::finish() {
  sorted_.clear();
  totalBytes_ = 0;
  for (const auto &kv : index_) {
    sorted_.push_back(kv.second.view);
    totalBytes_ += kv.second.view->data.size();
  }
  std::sort(sorted_.begin(), sorted_.end(),
            [](const TensorView *a, const TensorView *b) { return a->name < b->name; });
}

llvm::Expected<std::unique_ptr<SafetensorsCheckpoint>>
SafetensorsCheckpoint::open(llvm::StringRef path) {
  std::unique_ptr<SafetensorsCheckpoint> ckpt(new SafetensorsCheckpoint());
  namespace fs = llvm::sys::fs;
  namespace sp = llvm::sys::path;

  if (!fs::exists(path))
    return fileError(path, "no such file or directory");
  if (!fs::is_directory(path)) {
    auto f = SafetensorsFile::open(path);
    if (!f)
      return f.takeError();
    llvm::StringRef parent = sp::parent_path(path);
    ckpt->directory_ = parent.empty() ? "." : parent.str();
    if (auto e = ckpt->addFile(std::move(*f)))
      return e;
    ckpt->finish();
    return ckpt;
  }

  ckpt->directory_ = path.str();
  auto join = [&](llvm::StringRef name) {
    llvm::SmallString<256> p(path);
    sp::append(p, name);
    return std::string(p);
  };

  std::string single = join("model.safetensors");
  std::string index = join("model.safetensors.index.json");
  if (fs::exists(single)) {
    auto f = SafetensorsFile::open(single);
    if (!f)
      return f.takeError();
    if (auto e = ckpt->addFile(std::move(*f)))
      return e;
  } else if (fs::exists(index)) {
    auto json = readJsonFile(index);
    if (!json)
      return json.takeError();
    const llvm::json::Object *root = json->getAsObject();
    const llvm::json::Object *wm = root ? root->getObject("weight_map") : nullptr;
    if (!wm)
      return fileError(index, "missing 'weight_map' object");
    std::map<std::string, std::vector<std::string>> byShard; // sorted: deterministic order
    for (const auto &kv : *wm) {
      auto shard = kv.second.getAsString();
      if (!shard)
        return fileError(index, "weight_map entry " + quoted(kv.first) + " is not a string");
      // Shards live next to the index; refuse paths that would leave the folder.
      if (sp::is_absolute(*shard) || shard->contains("..") || shard->empty())
        return fileError(index, "weight_map entry " + quoted(kv.first) +
                                    " names an invalid shard path " + quoted(*shard));
      byShard[shard->str()].push_back(kv.first.str());
    }
    for (const auto &[shard, names] : byShard) {
      auto f = SafetensorsFile::open(join(shard));
      if (!f)
        return f.takeError();
      std::vector<std::string> sortedNames = names;
      std::sort(sortedNames.begin(), sortedNames.end());
      for (const std::string &n : sortedNames)
        if (!(*f)->find(n))
          return fileError(index, "tensor " + quoted(n) + " is listed in weight_map but missing from shard " +
                                      (*f)->path());
      if (auto e = ckpt->addFile(std::move(*f)))
        return e;
    }
  } else {
    std::vector<std::string> found;
    std::error_code ec;
    for (fs::directory_iterator it(path, ec), end; it != end && !ec; it.increment(ec))
      if (sp::extension(it->path()) == ".safetensors")
        found.push_back(it->path());
    if (ec)
      return fileError(path, "cannot list folder: " + ec.message());
    if (found.empty())
      return fileError(path, "no model.safetensors, model.safetensors.index.json or "
                             "*.safetensors file in this folder");
    std::sort(found.begin(), found.end());
    for (const std::string &p : found) {
      auto f = SafetensorsFile::open(p);
      if (!f)
        return f.takeError();
      if (auto e = ckpt->addFile(std::move(*f)))
        return e;
    }
  }
  ckpt->finish();
  return ckpt;
}

const TensorView *SafetensorsCheckpoint::find(llvm::StringRef name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : it->second.view;
}

llvm::StringRef SafetensorsCheckpoint::fileOf(llvm::StringRef name) const {
  auto it = index_.find(name);
  return it == index_.end() ? llvm::StringRef() : files_[it->second.file]->path();
}

// ---------------------------------------------------------------------------------------------
// SafetensorsWriter

void SafetensorsWriter::add(std::string name, DType dtype, std::vector<int64_t> shape,
                            llvm::ArrayRef<uint8_t> bytes) {
  entries_.push_back(Entry{std::move(name), dtype, std::move(shape),
                           std::vector<uint8_t>(bytes.begin(), bytes.end())});
}

void SafetensorsWriter::setMetadata(std::string key, std::string value) {
  metadata_[std::move(key)] = std::move(value);
}

llvm::Error SafetensorsWriter::validate() const {
  llvm::StringSet<> seen;
  for (const Entry &e : entries_) {
    auto bad = [&](const llvm::Twine &what) {
      return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                     ("safetensors writer: tensor " + quoted(e.name) + ": " + what).str());
    };
    if (e.name == "__metadata__" || e.name.empty())
      return bad("reserved or empty name");
    if (!seen.insert(e.name).second)
      return bad("added twice");
    int64_t count = 1;
    for (int64_t d : e.shape)
      if (d < 0)
        return bad("negative dimension");
    if (!checkedProduct(e.shape, count))
      return bad("element count overflows");
    uint64_t bytes;
    if (__builtin_mul_overflow(uint64_t(count), uint64_t(dtypeSize(e.dtype)), &bytes) ||
        bytes != e.bytes.size())
      return bad("has " + llvm::Twine(e.bytes.size()) + " bytes, shape and dtype need " +
                 llvm::Twine(uint64_t(count) * dtypeSize(e.dtype)));
  }
  return llvm::Error::success();
}

llvm::Error SafetensorsWriter::writeFile(llvm::StringRef path,
                                         llvm::ArrayRef<const Entry *> entries) const {
  std::string header;
  {
    llvm::raw_string_ostream hs(header);
    llvm::json::OStream j(hs);
    j.object([&] {
      if (!metadata_.empty())
        j.attributeObject("__metadata__", [&] {
          for (const auto &[k, v] : metadata_)
            j.attribute(k, v);
        });
      uint64_t offset = 0;
      for (const Entry *e : entries) {
        j.attributeObject(e->name, [&] {
          j.attribute("dtype", safetensorsName(e->dtype));
          j.attributeArray("shape", [&] {
            for (int64_t d : e->shape)
              j.value(d);
          });
          j.attributeArray("data_offsets", [&] {
            j.value(offset);
            j.value(offset + e->bytes.size());
          });
        });
        offset += e->bytes.size();
      }
    });
  }
  // Pad with spaces so the data area starts 8-byte aligned, as the reference writer does.
  while (header.size() % 8 != 0)
    header.push_back(' ');

  std::error_code ec;
  llvm::raw_fd_ostream os(path, ec, llvm::sys::fs::OF_None);
  if (ec)
    return fileError(path, "cannot create: " + ec.message());
  uint64_t n = header.size();
  char len[8];
  for (int i = 0; i < 8; ++i)
    len[i] = char((n >> (8 * i)) & 0xFF);
  os.write(len, 8);
  os << header;
  for (const Entry *e : entries)
    os.write(reinterpret_cast<const char *>(e->bytes.data()), e->bytes.size());
  os.close();
  if (os.has_error()) {
    std::string msg = os.error().message();
    os.clear_error();
    return fileError(path, "write failed: " + msg);
  }
  return llvm::Error::success();
}

llvm::Error SafetensorsWriter::write(llvm::StringRef path) const {
  if (auto e = validate())
    return e;
  std::vector<const Entry *> all;
  for (const Entry &e : entries_)
    all.push_back(&e);
  return writeFile(path, all);
}

llvm::Error SafetensorsWriter::writeSharded(llvm::StringRef dir, uint64_t maxShardBytes) const {
  if (auto e = validate())
    return e;
  if (std::error_code ec = llvm::sys::fs::create_directories(dir))
    return fileError(dir, "cannot create folder: " + ec.message());

  // Greedy split in insertion order; a tensor larger than the limit gets a shard of its own.
  std::vector<std::vector<const Entry *>> shards(1);
  uint64_t current = 0;
  for (const Entry &e : entries_) {
    if (!shards.back().empty() && current + e.bytes.size() > maxShardBytes) {
      shards.emplace_back();
      current = 0;
    }
    shards.back().push_back(&e);
    current += e.bytes.size();
  }

  std::map<std::string, std::string> weightMap;
  uint64_t total = 0;
  for (size_t s = 0; s < shards.size(); ++s) {
    char name[64];
    snprintf(name, sizeof(name), "model-%05zu-of-%05zu.safetensors", s + 1, shards.size());
    llvm::SmallString<256> p(dir);
    llvm::sys::path::append(p, name);
    if (auto e = writeFile(p, shards[s]))
      return e;
    for (const Entry *e : shards[s]) {
      weightMap[e->name] = name;
      total += e->bytes.size();
    }
  }

  llvm::SmallString<256> indexPath(dir);
  llvm::sys::path::append(indexPath, "model.safetensors.index.json");
  std::error_code ec;
  llvm::raw_fd_ostream os(indexPath, ec, llvm::sys::fs::OF_Text);
  if (ec)
    return fileError(indexPath, "cannot create: " + ec.message());
  {
    llvm::json::OStream j(os, /*IndentSize=*/2);
    j.object([&] {
      j.attributeObject("metadata", [&] { j.attribute("total_size", total); });
      j.attributeObject("weight_map", [&] {
        for (const auto &[k, v] : weightMap)
          j.attribute(k, v);
      });
    });
  }
  os << "\n";
  os.close();
  if (os.has_error()) {
    std::string msg = os.error().message();
    os.clear_error();
    return fileError(indexPath, "write failed: " + msg);
  }
  return llvm::Error::success();
}

} // namespace qlc::io
