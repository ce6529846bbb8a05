#include "io/gguf.h"

#include "llvm/ADT/StringSet.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MathExtras.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <bit>
#include <cstring>

namespace qlc::io {

// Fields are memcpy'd straight from the little-endian file.
static_assert(std::endian::native == std::endian::little, "GGUF I/O assumes a little-endian host");

namespace {
constexpr uint32_t kGgufMagic = 0x46554747; // "GGUF" read as a LE u32

// Smallest possible encodings, used to reject absurd counts before allocating anything.
constexpr uint64_t kMinKVBytes = 8 + 1 + 4 + 1;          // key len, 1-byte key, type, u8 value
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 4 + 8;  // name len, n_dims, type, offset
constexpr uint64_t kMaxDims = 4;                         // GGML_MAX_DIMS

bool isRemovedGgmlType(uint32_t id) {
  return id == 4 || id == 5 || (id >= 31 && id <= 33) || (id >= 36 && id <= 38);
}

std::string quoted(llvm::StringRef s) { return ("'" + s + "'").str(); }

bool isValidType(uint32_t t) { return t <= uint32_t(GgufType::F64); }
} // namespace

llvm::StringRef ggufTypeName(GgufType t) {
  static const char *const names[] = {"UINT8", "INT8",   "UINT16", "INT16", "UINT32",
                                      "INT32", "FLOAT32", "BOOL",  "STRING", "ARRAY",
                                      "UINT64", "INT64",  "FLOAT64"};
  return isValidType(uint32_t(t)) ? names[uint32_t(t)] : "INVALID";
}

size_t ggufScalarSize(GgufType t) {
  switch (t) {
  case GgufType::U8: case GgufType::I8: case GgufType::Bool: return 1;
  case GgufType::U16: case GgufType::I16: return 2;
  case GgufType::U32: case GgufType::I32: case GgufType::F32: return 4;
  case GgufType::U64: case GgufType::I64: case GgufType::F64: return 8;
  case GgufType::String: case GgufType::Array: return 0;
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------
// GgufValue

GgufValue GgufValue::makeUInt(GgufType t, uint64_t x) { GgufValue r; r.type = t; r.v = x; return r; }
GgufValue GgufValue::makeInt(GgufType t, int64_t x) { GgufValue r; r.type = t; r.v = x; return r; }
GgufValue GgufValue::makeFloat(GgufType t, double x) { GgufValue r; r.type = t; r.v = x; return r; }
GgufValue GgufValue::makeBool(bool x) { GgufValue r; r.type = GgufType::Bool; r.v = x; return r; }
GgufValue GgufValue::makeString(std::string s) {
  GgufValue r;
  r.type = GgufType::String;
  r.v = std::move(s);
  return r;
}
GgufValue GgufValue::makeArray(GgufType elemType, std::vector<GgufValue> elems) {
  GgufValue r;
  r.type = GgufType::Array;
  r.elemType = elemType;
  r.v = std::move(elems);
  return r;
}
GgufValue GgufValue::makeStringArray(const std::vector<std::string> &elems) {
  std::vector<GgufValue> vs;
  vs.reserve(elems.size());
  for (const std::string &s : elems)
    vs.push_back(makeString(s));
  return makeArray(GgufType::String, std::move(vs));
}

std::optional<int64_t> GgufValue::asInt() const {
  if (auto *i = std::get_if<int64_t>(&v))
    return *i;
  if (auto *u = std::get_if<uint64_t>(&v); u && *u <= uint64_t(INT64_MAX))
    return int64_t(*u);
  return std::nullopt;
}
std::optional<uint64_t> GgufValue::asUInt() const {
  if (auto *u = std::get_if<uint64_t>(&v))
    return *u;
  if (auto *i = std::get_if<int64_t>(&v); i && *i >= 0)
    return uint64_t(*i);
  return std::nullopt;
}
std::optional<double> GgufValue::asFloat() const {
  if (auto *d = std::get_if<double>(&v))
    return *d;
  if (auto *u = std::get_if<uint64_t>(&v))
    return double(*u);
  if (auto *i = std::get_if<int64_t>(&v))
    return double(*i);
  return std::nullopt;
}
std::optional<bool> GgufValue::asBool() const {
  if (auto *b = std::get_if<bool>(&v))
    return *b;
  return std::nullopt;
}
std::optional<std::string> GgufValue::asString() const {
  if (auto *s = std::get_if<std::string>(&v))
    return *s;
  return std::nullopt;
}
const std::vector<GgufValue> *GgufValue::asArray() const {
  return std::get_if<std::vector<GgufValue>>(&v);
}

bool GgufValue::operator==(const GgufValue &o) const {
  if (type != o.type)
    return false;
  if (type == GgufType::Array && elemType != o.elemType)
    return false;
  return v == o.v;
}

int64_t GgufTensorInfo::numElements() const {
  int64_t n = 1;
  for (int64_t d : ne)
    n *= d;
  return n;
}

// ---------------------------------------------------------------------------------------------
// Reader

class GgufParser {
public:
  explicit GgufParser(GgufFile &f)
      : f_(f), base_(reinterpret_cast<const uint8_t *>(f.buffer_->getBufferStart())),
        size_(f.buffer_->getBufferSize()) {}

  llvm::Error run();

private:
  llvm::Error fail(const llvm::Twine &what) const {
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   (f_.path_ + ": " + what).str());
  }
  llvm::Error truncated(const llvm::Twine &what) const {
    return fail("truncated file: " + what + " at offset " + llvm::Twine(pos_) +
                " runs past the end (" + llvm::Twine(size_) + " bytes)");
  }
  uint64_t remaining() const { return size_ - pos_; }

  template <class T> bool take(T &out) {
    if (remaining() < sizeof(T))
      return false;
    std::memcpy(&out, base_ + pos_, sizeof(T)); // GGUF is little-endian, like our hosts
    pos_ += sizeof(T);
    return true;
  }
  template <class T> llvm::Error read(T &out, const llvm::Twine &what) {
    if (!take(out))
      return truncated(what);
    return llvm::Error::success();
  }
  llvm::Error readString(std::string &out, const llvm::Twine &what);
  llvm::Error readValue(GgufType t, GgufValue &out, unsigned depth, llvm::StringRef key);

  GgufFile &f_;
  const uint8_t *base_;
  uint64_t size_;
  uint64_t pos_ = 0;
};

llvm::Error GgufParser::readString(std::string &out, const llvm::Twine &what) {
  uint64_t len;
  if (auto e = read(len, what + " length"))
    return e;
  // Checked against the file before allocating: a 2^62-byte length must fail fast.
  if (len > remaining())
    return fail(what + " length " + llvm::Twine(len) + " exceeds the " +
                llvm::Twine(remaining()) + " bytes left in the file");
  out.assign(reinterpret_cast<const char *>(base_ + pos_), len);
  pos_ += len;
  return llvm::Error::success();
}

llvm::Error GgufParser::readValue(GgufType t, GgufValue &out, unsigned depth,
                                  llvm::StringRef key) {
  out.type = t;
  // Built only on failure: token arrays hold 10^5 values, so no per-value message strings.
  auto truncatedValue = [&] { return truncated("value of key '" + key + "'"); };
#define QLC_GGUF_SCALAR(TAG, CTYPE, STORE)                                                     \
  case GgufType::TAG: {                                                                        \
    CTYPE x;                                                                                   \
    if (!take(x))                                                                              \
      return truncatedValue();                                                                 \
    out.v = STORE;                                                                             \
    break;                                                                                     \
  }
  switch (t) {
    QLC_GGUF_SCALAR(U8, uint8_t, uint64_t(x))
    QLC_GGUF_SCALAR(U16, uint16_t, uint64_t(x))
    QLC_GGUF_SCALAR(U32, uint32_t, uint64_t(x))
    QLC_GGUF_SCALAR(U64, uint64_t, x)
    QLC_GGUF_SCALAR(I8, int8_t, int64_t(x))
    QLC_GGUF_SCALAR(I16, int16_t, int64_t(x))
    QLC_GGUF_SCALAR(I32, int32_t, int64_t(x))
    QLC_GGUF_SCALAR(I64, int64_t, x)
    QLC_GGUF_SCALAR(F32, float, double(x))
    QLC_GGUF_SCALAR(F64, double, x)
    QLC_GGUF_SCALAR(Bool, uint8_t, x != 0)
#undef QLC_GGUF_SCALAR
  case GgufType::String: {
    std::string s;
    if (auto e = readString(s, "value of key '" + key + "'"))
      return e;
    out.v = std::move(s);
    break;
  }
  case GgufType::Array: {
    // ggml rejects nested arrays; the spec allows them, so accept a bounded depth.
    if (depth >= kGgufMaxArrayDepth)
      return fail("key " + quoted(key) + ": arrays nested deeper than " +
                  llvm::Twine(kGgufMaxArrayDepth) + " levels");
    uint32_t et = 0; // read() fills it or returns an error
    uint64_t count = 0;
    if (auto e = read(et, "array element type of key " + quoted(key)))
      return e;
    if (!isValidType(et))
      return fail("key " + quoted(key) + ": unknown array element type " + llvm::Twine(et));
    if (auto e = read(count, "array length of key " + quoted(key)))
      return e;
    GgufType elem = GgufType(et);
    uint64_t minElem = elem == GgufType::String  ? 8
                       : elem == GgufType::Array ? 4 + 8
                                                 : ggufScalarSize(elem);
    if (count > remaining() / minElem)
      return fail("key " + quoted(key) + ": array of " + llvm::Twine(count) + " " +
                  ggufTypeName(elem) + " elements cannot fit in the " +
                  llvm::Twine(remaining()) + " bytes left in the file");
    out.elemType = elem;
    std::vector<GgufValue> elems;
    elems.reserve(count);
    for (uint64_t i = 0; i < count; ++i) {
      elems.emplace_back();
      if (auto e = readValue(elem, elems.back(), depth + 1, key))
        return e;
    }
    out.v = std::move(elems);
    break;
  }
  }
  return llvm::Error::success();
}

llvm::Error GgufParser::run() {
  uint32_t magic;
  if (!take(magic))
    return fail("file is " + llvm::Twine(size_) + " bytes, too short for the GGUF magic");
  if (magic != kGgufMagic)
    return fail("bad magic 0x" + llvm::Twine::utohexstr(magic) + " (not a GGUF file)");

  uint32_t version = 0;
  if (auto e = read(version, "version"))
    return e;
  // A byte-swapped small version has zero low bits (FORMATS.md §6.1, as ggml reports it).
  if ((version & 0xFFFF) == 0)
    return fail("version 0x" + llvm::Twine::utohexstr(version) +
                " looks byte-swapped: probably a big-endian GGUF file (endianness mismatch), "
                "which is not supported");
  if (version == 1)
    return fail("GGUF version 1 is not supported (only versions 2 and 3)");
  if (version > 3)
    return fail("unsupported GGUF version " + llvm::Twine(version) + " (only 2 and 3)");
  f_.version_ = version;

  uint64_t nTensors, nKV;
  if (auto e = read(nTensors, "tensor count"))
    return e;
  if (auto e = read(nKV, "metadata KV count"))
    return e;
  if (nTensors > remaining() / kMinTensorInfoBytes)
    return fail("tensor count " + llvm::Twine(nTensors) + " cannot fit in the " +
                llvm::Twine(remaining()) + " bytes left in the file");
  if (nKV > remaining() / kMinKVBytes)
    return fail("metadata KV count " + llvm::Twine(nKV) + " cannot fit in the " +
                llvm::Twine(remaining()) + " bytes left in the file");

  f_.kv_.reserve(nKV);
  for (uint64_t i = 0; i < nKV; ++i) {
    std::string key;
    if (auto e = readString(key, "key of KV #" + llvm::Twine(i)))
      return e;
    if (key.empty())
      return fail("KV #" + llvm::Twine(i) + " has an empty key");
    if (f_.kvIndex_.count(key))
      return fail("duplicate key " + quoted(key));
    uint32_t type;
    if (auto e = read(type, "value type of key " + quoted(key)))
      return e;
    if (!isValidType(type))
      return fail("key " + quoted(key) + " has unknown value type " + llvm::Twine(type));
    GgufValue value;
    if (auto e = readValue(GgufType(type), value, 0, key))
      return e;
    f_.kvIndex_[key] = f_.kv_.size();
    f_.kv_.emplace_back(std::move(key), std::move(value));
  }

  if (const GgufValue *a = f_.find("general.alignment")) {
    if (a->type != GgufType::U32)
      return fail("general.alignment must be of type UINT32, not " + ggufTypeName(a->type));
    uint64_t al = *a->asUInt();
    if (al == 0 || !llvm::isPowerOf2_64(al))
      return fail("general.alignment " + llvm::Twine(al) + " is not a non-zero power of two");
    f_.alignment_ = al;
  }

  std::vector<uint64_t> nbytes;
  f_.tensors_.reserve(nTensors);
  nbytes.reserve(nTensors);
  for (uint64_t i = 0; i < nTensors; ++i) {
    GgufTensorInfo t;
    if (auto e = readString(t.name, "name of tensor #" + llvm::Twine(i)))
      return e;
    if (t.name.empty())
      return fail("tensor #" + llvm::Twine(i) + " has an empty name");
    if (f_.tensorIndex_.count(t.name))
      return fail("duplicate tensor name " + quoted(t.name));
    uint32_t nDims;
    if (auto e = read(nDims, "dimension count of " + quoted(t.name)))
      return e;
    if (nDims > kMaxDims)
      return fail("tensor " + quoted(t.name) + " has " + llvm::Twine(nDims) +
                  " dimensions (at most 4)");
    for (uint32_t d = 0; d < nDims; ++d) {
      int64_t n;
      if (auto e = read(n, "dimensions of " + quoted(t.name)))
        return e;
      if (n < 0)
        return fail("tensor " + quoted(t.name) + " has negative dimension ne[" +
                    llvm::Twine(d) + "] = " + llvm::Twine(n));
      t.ne.push_back(n);
    }
    if (auto e = read(t.ggmlType, "ggml type of " + quoted(t.name)))
      return e;
    if (isRemovedGgmlType(t.ggmlType))
      return fail("tensor " + quoted(t.name) + " has removed ggml type " +
                  llvm::Twine(t.ggmlType));
    if (!ggmlTypeTraits(t.ggmlType))
      return fail("tensor " + quoted(t.name) + " has unknown ggml type " +
                  llvm::Twine(t.ggmlType));
    if (auto e = read(t.offset, "offset of " + quoted(t.name)))
      return e;
    auto bytes = ggmlTensorBytes(t.ggmlType, t.ne);
    if (!bytes)
      return fail("tensor " + quoted(t.name) + ": " + llvm::toString(bytes.takeError()));
    nbytes.push_back(*bytes);
    f_.tensorIndex_[t.name] = f_.tensors_.size();
    f_.tensors_.push_back(std::move(t));
  }

  // The data blob starts aligned, but only when there are tensors (FORMATS.md §6.1).
  uint64_t dataOffset = pos_;
  if (nTensors > 0) {
    dataOffset = llvm::alignTo(pos_, f_.alignment_);
    if (dataOffset > size_)
      return fail("tensor data blob would start at " + llvm::Twine(dataOffset) +
                  ", past the end of the file (" + llvm::Twine(size_) + " bytes)");
  }
  f_.dataOffset_ = dataOffset;
  const uint64_t blob = size_ - dataOffset;

  for (size_t i = 0; i < f_.tensors_.size(); ++i) {
    GgufTensorInfo &t = f_.tensors_[i];
    // Tolerant like the spec: any aligned offset, not only ggml's sequential layout.
    if (t.offset % f_.alignment_ != 0)
      return fail("tensor " + quoted(t.name) + " offset " + llvm::Twine(t.offset) +
                  " is not a multiple of the alignment " + llvm::Twine(f_.alignment_));
    uint64_t end;
    if (__builtin_add_overflow(t.offset, nbytes[i], &end) || end > blob)
      return fail("tensor " + quoted(t.name) + " data [" + llvm::Twine(t.offset) + ", +" +
                  llvm::Twine(nbytes[i]) + ") runs past the end of the file (data blob has " +
                  llvm::Twine(blob) + " bytes)");
    t.data = llvm::ArrayRef<uint8_t>(base_ + dataOffset + t.offset, nbytes[i]);
    // ggml's loader reads the blob as the sum of padded tensor sizes, so a file that stops
    // inside a tensor's trailing padding is truncated even though the data itself is there.
    if (llvm::alignTo(end, f_.alignment_) > blob)
      return fail("truncated file: it ends inside the padding after tensor " + quoted(t.name) +
                  " (data blob has " + llvm::Twine(blob) + " bytes)");
  }

  std::vector<size_t> order(f_.tensors_.size());
  for (size_t i = 0; i < order.size(); ++i)
    order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return f_.tensors_[a].offset < f_.tensors_[b].offset;
  });
  const GgufTensorInfo *prev = nullptr;
  uint64_t prevEnd = 0;
  for (size_t i : order) {
    const GgufTensorInfo &t = f_.tensors_[i];
    if (nbytes[i] == 0)
      continue;
    if (prev && t.offset < prevEnd)
      return fail("tensors " + quoted(prev->name) + " and " + quoted(t.name) + " overlap");
    prev = &t;
    prevEnd = t.offset + nbytes[i];
  }
  return llvm::Error::success();
}

llvm::Expected<std::unique_ptr<GgufFile>> GgufFile::open(llvm::StringRef path) {
  // mmap: tensor data is referenced in place, never copied.
  auto bufOr = llvm::MemoryBuffer::getFile(path, /*IsText=*/false,
                                           /*RequiresNullTerminator=*/false);
  if (!bufOr)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   (path + ": cannot open: " + bufOr.getError().message()).str());
  return openBuffer(std::move(*bufOr), path);
}

llvm::Expected<std::unique_ptr<GgufFile>>
GgufFile::openBuffer(std::unique_ptr<llvm::MemoryBuffer> buffer, llvm::StringRef path) {
  std::unique_ptr<GgufFile> f(new GgufFile());
  f->path_ = path.str();
  f->buffer_ = std::move(buffer);
  GgufParser p(*f);
  if (auto e = p.run())
    return e;
  return f;
}

const GgufValue *GgufFile::find(llvm::StringRef key) const {
  auto it = kvIndex_.find(key);
  return it == kvIndex_.end() ? nullptr : &kv_[it->second].second;
}

const GgufTensorInfo *GgufFile::findTensor(llvm::StringRef name) const {
  auto it = tensorIndex_.find(name);
  return it == tensorIndex_.end() ? nullptr : &tensors_[it->second];
}

// ---------------------------------------------------------------------------------------------
// Writer

void GgufWriter::setAlignment(uint32_t a) {
  alignment_ = a;
  for (auto &kv : kv_)
    if (kv.first == "general.alignment") {
      kv.second = GgufValue::makeUInt(GgufType::U32, a);
      return;
    }
  kv_.emplace_back("general.alignment", GgufValue::makeUInt(GgufType::U32, a));
}

void GgufWriter::addKV(std::string key, GgufValue value) {
  if (key == "general.alignment" && value.type == GgufType::U32)
    alignment_ = uint32_t(*value.asUInt());
  kv_.emplace_back(std::move(key), std::move(value));
}

void GgufWriter::addTensor(std::string name, std::vector<int64_t> ne, uint32_t ggmlType,
                           llvm::ArrayRef<uint8_t> bytes) {
  tensors_.push_back(
      Tensor{std::move(name), std::move(ne), ggmlType, std::vector<uint8_t>(bytes.begin(), bytes.end())});
}

namespace {
llvm::Error writerError(const llvm::Twine &what) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 ("GGUF writer: " + what).str());
}

// The variant alternative must match the declared type, or the bytes written would lie.
llvm::Error checkValue(const GgufValue &v, llvm::StringRef key, unsigned depth) {
  bool ok = false;
  switch (v.type) {
  case GgufType::U8: case GgufType::U16: case GgufType::U32: case GgufType::U64:
    ok = std::holds_alternative<uint64_t>(v.v);
    break;
  case GgufType::I8: case GgufType::I16: case GgufType::I32: case GgufType::I64:
    ok = std::holds_alternative<int64_t>(v.v);
    break;
  case GgufType::F32: case GgufType::F64: ok = std::holds_alternative<double>(v.v); break;
  case GgufType::Bool: ok = std::holds_alternative<bool>(v.v); break;
  case GgufType::String: ok = std::holds_alternative<std::string>(v.v); break;
  case GgufType::Array: {
    const auto *arr = v.asArray();
    if (!arr || !isValidType(uint32_t(v.elemType)))
      break;
    if (depth >= kGgufMaxArrayDepth)
      return writerError("key " + quoted(key) + ": arrays nested too deeply");
    for (const GgufValue &e : *arr) {
      if (e.type != v.elemType)
        return writerError("key " + quoted(key) + ": array element of type " +
                           ggufTypeName(e.type) + " in an array of " + ggufTypeName(v.elemType));
      if (auto err = checkValue(e, key, depth + 1))
        return err;
    }
    ok = true;
    break;
  }
  }
  if (!ok)
    return writerError("key " + quoted(key) + ": value does not hold a " + ggufTypeName(v.type));
  return llvm::Error::success();
}

class ByteSink {
public:
  explicit ByteSink(llvm::raw_ostream &os) : os_(os) {}
  template <class T> void put(T x) {
    os_.write(reinterpret_cast<const char *>(&x), sizeof(T)); // little-endian host
    pos_ += sizeof(T);
  }
  void bytes(const void *p, size_t n) {
    os_.write(static_cast<const char *>(p), n);
    pos_ += n;
  }
  void str(llvm::StringRef s) {
    put<uint64_t>(s.size());
    bytes(s.data(), s.size());
  }
  void padTo(uint64_t align) {
    while (pos_ % align != 0) {
      os_ << '\0';
      ++pos_;
    }
  }
  void value(const GgufValue &v) {
    switch (v.type) {
    case GgufType::U8: put<uint8_t>(uint8_t(std::get<uint64_t>(v.v))); break;
    case GgufType::U16: put<uint16_t>(uint16_t(std::get<uint64_t>(v.v))); break;
    case GgufType::U32: put<uint32_t>(uint32_t(std::get<uint64_t>(v.v))); break;
    case GgufType::U64: put<uint64_t>(std::get<uint64_t>(v.v)); break;
    case GgufType::I8: put<int8_t>(int8_t(std::get<int64_t>(v.v))); break;
    case GgufType::I16: put<int16_t>(int16_t(std::get<int64_t>(v.v))); break;
    case GgufType::I32: put<int32_t>(int32_t(std::get<int64_t>(v.v))); break;
    case GgufType::I64: put<int64_t>(std::get<int64_t>(v.v)); break;
    case GgufType::F32: put<float>(float(std::get<double>(v.v))); break;
    case GgufType::F64: put<double>(std::get<double>(v.v)); break;
    case GgufType::Bool: put<uint8_t>(std::get<bool>(v.v) ? 1 : 0); break;
    case GgufType::String: str(std::get<std::string>(v.v)); break;
    case GgufType::Array: {
      const auto &arr = std::get<std::vector<GgufValue>>(v.v);
      put<uint32_t>(uint32_t(v.elemType));
      put<uint64_t>(arr.size());
      for (const GgufValue &e : arr)
        value(e);
      break;
    }
    }
  }
  uint64_t pos() const { return pos_; }

private:
  llvm::raw_ostream &os_;
  uint64_t pos_ = 0;
};
} // namespace

llvm::Error GgufWriter::write(llvm::StringRef path) const {
  if (version_ != 2 && version_ != 3)
    return writerError("cannot write GGUF version " + llvm::Twine(version_) + " (only 2 and 3)");
  if (alignment_ == 0 || !llvm::isPowerOf2_32(alignment_))
    return writerError("alignment " + llvm::Twine(alignment_) + " is not a non-zero power of two");
  llvm::StringSet<> keys;
  for (const auto &[k, v] : kv_) {
    if (k.empty())
      return writerError("empty key");
    if (!keys.insert(k).second)
      return writerError("duplicate key " + quoted(k));
    if (auto e = checkValue(v, k, 0))
      return e;
    if (k == "general.alignment" && (v.type != GgufType::U32 || *v.asUInt() != alignment_))
      return writerError("general.alignment must be a UINT32 equal to the alignment");
  }
  llvm::StringSet<> names;
  std::vector<uint64_t> offsets;
  uint64_t offset = 0;
  for (const Tensor &t : tensors_) {
    if (t.name.empty())
      return writerError("tensor with an empty name");
    if (!names.insert(t.name).second)
      return writerError("duplicate tensor name " + quoted(t.name));
    if (t.ne.size() > kMaxDims)
      return writerError("tensor " + quoted(t.name) + " has more than 4 dimensions");
    for (int64_t d : t.ne)
      if (d < 0)
        return writerError("tensor " + quoted(t.name) + " has a negative dimension");
    auto bytes = ggmlTensorBytes(t.type, t.ne);
    if (!bytes)
      return writerError("tensor " + quoted(t.name) + ": " + llvm::toString(bytes.takeError()));
    if (*bytes != t.bytes.size())
      return writerError("tensor " + quoted(t.name) + " has " + llvm::Twine(t.bytes.size()) +
                         " bytes, its type and dims need " + llvm::Twine(*bytes));
    offsets.push_back(offset);
    offset += llvm::alignTo(t.bytes.size(), alignment_);
  }

  std::error_code ec;
  llvm::raw_fd_ostream os(path, ec, llvm::sys::fs::OF_None);
  if (ec)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   (path + ": cannot create: " + ec.message()).str());
  ByteSink out(os);
  out.put<uint32_t>(kGgufMagic);
  out.put<uint32_t>(version_);
  out.put<uint64_t>(tensors_.size());
  out.put<uint64_t>(kv_.size());
  for (const auto &[k, v] : kv_) {
    out.str(k);
    out.put<uint32_t>(uint32_t(v.type));
    out.value(v);
  }
  for (size_t i = 0; i < tensors_.size(); ++i) {
    const Tensor &t = tensors_[i];
    out.str(t.name);
    out.put<uint32_t>(uint32_t(t.ne.size()));
    for (int64_t d : t.ne)
      out.put<int64_t>(d);
    out.put<uint32_t>(t.type);
    out.put<uint64_t>(offsets[i]);
  }
  if (!tensors_.empty()) {
    out.padTo(alignment_);
    for (size_t i = 0; i < tensors_.size(); ++i) {
      out.bytes(tensors_[i].bytes.data(), tensors_[i].bytes.size());
      out.padTo(alignment_); // data blob starts aligned, so this aligns relative offsets too
    }
  }
  os.close();
  if (os.has_error()) {
    std::string msg = os.error().message();
    os.clear_error();
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   (path + ": write failed: " + msg).str());
  }
  return llvm::Error::success();
}

} // namespace qlc::io
