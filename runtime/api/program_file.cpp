// Saved programs (docs/runtime.md, "Program files"): a folder with
//   manifest.json        {"format": "qlc-program", "format_version": 1, "target", "pipeline",
//                          "qlc_version", "source", "ir", "weights", "weights_bytes"}
//   program.qir          the lowered IR; checkpoint = "weights.safetensors", every part `from`
//                          the tensor "<weight>.<part>"
//   weights.safetensors  every part of every weight as lowered (rewritten layouts, merged w13,
//                          pre-dequantized f16 ...), byte for byte
// Loading parses and verifies the IR, checks every part against the weights file and creates the
// executor: no import, no lowering. The bytes the executor sees are the ones the original program
// saw, so a loaded program computes bit-identical results.
#include <optional>
#include <set>

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include "io/dtype.h"
#include "ir/diagnostics.h"
#include "ir/parser.h"
#include "ir/printer.h"
#include "ir/verifier.h"
#include "qlc/runtime.h"
#include "runtime/api/api_internal.h"

namespace qlc {

static constexpr int64_t kFormatVersion = 1;
static const char *const kManifest = "manifest.json";
static const char *const kIr = "program.qir";
static const char *const kWeights = "weights.safetensors";

static std::string joinPath(llvm::StringRef dir, llvm::StringRef file) {
  llvm::SmallString<256> p(dir);
  llvm::sys::path::append(p, file);
  return std::string(p);
}

/// Writes every part of every weight of `m` (bytes resolved through `store`) as one safetensors
/// file, streaming: a part's bytes are written as they are resolved, never all held at once.
/// Tensor i is named names[i]; parts are visited in the module's order.
static Expected<void> writeWeights(const Module &m, const WeightStore *store,
                                   const std::vector<std::string> &names, const std::string &path,
                                   const char *target, const ProgressCallback &progress) {
  // The header first: names, dtypes, shapes and offsets from the declared part types.
  std::string header;
  {
    llvm::raw_string_ostream hs(header);
    llvm::json::OStream j(hs);
    j.object([&] {
      j.attributeObject("__metadata__", [&] {
        j.attribute("format", "pt");
        j.attribute("qlc_program", target);
      });
      uint64_t offset = 0;
      size_t t = 0;
      for (const auto &w : m.weights())
        for (const WeightPart &p : w->parts()) {
          uint64_t size = uint64_t(p.type.numBytes().value_or(0));
          j.attributeObject(names[t++], [&] {
            j.attribute("dtype", io::safetensorsName(io::dtypeOf(p.type.elem)));
            j.attributeArray("shape", [&] {
              for (int64_t d : p.type.dims)
                j.value(d);
            });
            j.attributeArray("data_offsets", [&] {
              j.value(offset);
              j.value(offset + size);
            });
          });
          offset += size;
        }
    });
  }
  while (header.size() % 8 != 0) // the data area starts 8-byte aligned, as safetensors writes it
    header.push_back(' ');
  std::error_code ec;
  llvm::raw_fd_ostream os(path, ec, llvm::sys::fs::OF_None);
  if (ec)
    return Error(path + ": cannot write: " + ec.message());
  char len[8];
  for (int i = 0; i < 8; ++i)
    len[i] = char((uint64_t(header.size()) >> (8 * i)) & 0xFF);
  os.write(len, 8);
  os << header;
  uint64_t n = m.weights().size(), i = 0;
  for (const auto &w : m.weights()) {
    if (progress)
      progress(Progress{"save", i++, n, w->name()});
    for (const WeightPart &p : w->parts()) {
      auto bytes = resolvePart(*w, p, store);
      if (!bytes)
        return api::toError(bytes.takeError());
      if (std::optional<int64_t> want = p.type.numBytes(); !want || uint64_t(*want) != bytes->bytes.size())
        return Error("@" + w->name() + " part " + p.name + ": " + std::to_string(bytes->bytes.size()) +
                     " bytes for " + p.type.str() + "; cannot save");
      os.write(reinterpret_cast<const char *>(bytes->bytes.data()), bytes->bytes.size());
    }
  }
  if (progress)
    progress(Progress{"save", n, n, ""});
  os.close();
  if (os.has_error())
    return Error(path + ": write failed: " + os.error().message());
  return {};
}

Expected<void> Program::save(const std::string &dir, const ProgressCallback &progress) const {
  using namespace api;
  if (std::error_code ec = llvm::sys::fs::create_directories(dir))
    return Error(dir + ": cannot create: " + ec.message());
  const Module &m = *impl_->module;
  // The saved IR: every part `from` its tensor "<weight>.<part>" in the weights file.
  std::unique_ptr<Module> out = m.clone();
  std::vector<std::string> names;
  std::set<std::string> taken;
  for (const auto &w : out->weights())
    for (WeightPart &p : w->parts()) {
      std::string tensor = w->name() + "." + p.name;
      if (!taken.insert(tensor).second)
        return Error("@" + w->name() + " part " + p.name + ": tensor name '" + tensor +
                     "' is taken by another weight's part; cannot save");
      names.push_back(tensor);
      p.sources = {tensor};
      p.data.reset();
    }
  out->attrs()["checkpoint"] = Attribute(std::string(kWeights));
  std::string weightsPath = joinPath(dir, kWeights), irPath = joinPath(dir, kIr),
              manifestPath = joinPath(dir, kManifest);
  // Written next to the old file and renamed over it: a process that has the old program's
  // weights mapped keeps reading them, and a failed save leaves no half-written file in place.
  std::string tmp = weightsPath + ".tmp";
  if (auto ok = writeWeights(m, impl_->store.get(), names, tmp, impl_->target.name(), progress); !ok) {
    llvm::sys::fs::remove(tmp);
    return ok.error();
  }
  if (std::error_code ec = llvm::sys::fs::rename(tmp, weightsPath))
    return Error(weightsPath + ": cannot write: " + ec.message());
  uint64_t weightsBytes = 0;
  if (std::error_code ec = llvm::sys::fs::file_size(weightsPath, weightsBytes))
    return Error(weightsPath + ": cannot stat: " + ec.message());
  std::error_code ec;
  {
    llvm::raw_fd_ostream os(irPath, ec, llvm::sys::fs::OF_Text);
    if (ec)
      return Error(irPath + ": cannot write: " + ec.message());
    printModule(*out, os);
  }
  llvm::raw_fd_ostream os(manifestPath, ec, llvm::sys::fs::OF_Text);
  if (ec)
    return Error(manifestPath + ": cannot write: " + ec.message());
  llvm::json::Object manifest{{"format", "qlc-program"},
                              {"format_version", kFormatVersion},
                              {"qlc_version", version()},
                              {"target", impl_->target.name()},
                              {"pipeline", impl_->pipeline},
                              {"source", impl_->source},
                              {"ir", kIr},
                              {"weights", kWeights},
                              {"weights_bytes", int64_t(weightsBytes)}};
  os << llvm::formatv("{0:2}", llvm::json::Value(std::move(manifest))) << "\n";
  if (os.has_error())
    return Error(manifestPath + ": write failed");
  return {};
}

namespace api {

struct Manifest {
  Target target = Target::reference();
  std::string pipeline, source, ir, weights;
  uint64_t weightsBytes = 0;
};

/// Reads and checks manifest.json; every error names the file and the key.
static Expected<Manifest> readManifest(const std::string &dir) {
  std::string path = joinPath(dir, kManifest);
  if (!llvm::sys::fs::is_directory(dir))
    return Error(dir + ": not a saved program (no such folder)");
  auto buf = llvm::MemoryBuffer::getFile(path, /*IsText=*/true);
  if (!buf)
    return Error(path + ": cannot open: " + buf.getError().message() +
                 " (is this a folder written by `qlc compile -o` / Program::save?)");
  auto json = llvm::json::parse((*buf)->getBuffer());
  if (!json)
    return Error(path + ": corrupt manifest: " + llvm::toString(json.takeError()));
  const llvm::json::Object *o = json->getAsObject();
  if (!o)
    return Error(path + ": corrupt manifest: not a JSON object");
  auto str = [&](const char *key) -> Expected<std::string> {
    auto v = o->getString(key);
    if (!v)
      return Error(path + ": corrupt manifest: '" + key + "' is missing or not a string");
    return v->str();
  };
  auto format = str("format");
  if (!format)
    return format.error();
  if (*format != "qlc-program")
    return Error(path + ": not a qlc program manifest (format '" + *format + "')");
  std::optional<int64_t> ver = o->getInteger("format_version");
  if (!ver)
    return Error(path + ": corrupt manifest: 'format_version' is missing or not an integer");
  if (*ver != kFormatVersion)
    return Error(path + ": program format version " + std::to_string(*ver) +
                 " is not supported (this qlc " + version() + " reads version " +
                 std::to_string(kFormatVersion) + "; recompile the model)");
  Manifest m;
  auto target = str("target");
  if (!target)
    return target.error();
  auto t = Target::parse(*target);
  if (!t)
    return Error(path + ": corrupt manifest: " + t.error().message());
  m.target = *t;
  for (auto [key, field] : {std::pair{"pipeline", &m.pipeline}, {"source", &m.source},
                            {"ir", &m.ir}, {"weights", &m.weights}}) {
    auto v = str(key);
    if (!v)
      return v.error();
    *field = *v;
  }
  for (const std::string *f : {&m.ir, &m.weights})
    if (f->empty() || llvm::sys::path::has_parent_path(*f) || *f == "." || *f == "..")
      return Error(path + ": corrupt manifest: '" + *f + "' is not a file name in the program folder");
  std::optional<int64_t> wb = o->getInteger("weights_bytes");
  if (!wb || *wb < 0)
    return Error(path + ": corrupt manifest: 'weights_bytes' is missing or not a size");
  m.weightsBytes = uint64_t(*wb);
  return m;
}

Expected<Target> savedProgramTarget(const std::string &dir) {
  auto man = readManifest(dir);
  if (!man)
    return man.error();
  return man->target;
}

static Expected<Program> loadProgram(const std::string &dir, const Target *want,
                                     const CompileOptions &options) {
  ensureRegistered();
  auto man = readManifest(dir);
  if (!man)
    return man.error();
  Target target = man->target;
  if (want) {
    if (want->kind() != man->target.kind())
      return Error(joinPath(dir, kManifest) + ": target mismatch: the program was compiled for " +
                   man->target.name() + ", not " + want->name() + " (recompile it with --target " +
                   want->name() + ")");
    target = *want; // this runtime's device options
  }
  std::string weightsPath = joinPath(dir, man->weights), irPath = joinPath(dir, man->ir);
  uint64_t size = 0;
  if (std::error_code ec = llvm::sys::fs::file_size(weightsPath, size))
    return Error(weightsPath + ": missing weights file: " + ec.message());
  if (size != man->weightsBytes)
    return Error(weightsPath + ": " + std::to_string(size) + " bytes, the manifest says " +
                 std::to_string(man->weightsBytes) + " (truncated or replaced?)");
  if (options.progress)
    options.progress(Progress{"load", 0, 1, irPath});
  auto buf = llvm::MemoryBuffer::getFile(irPath, /*IsText=*/true);
  if (!buf)
    return Error(irPath + ": cannot open: " + buf.getError().message());
  auto sm = std::make_unique<llvm::SourceMgr>();
  std::string diagText;
  llvm::raw_string_ostream diagOs(diagText);
  DiagnosticEngine diag(sm.get());
  diag.setStream(&diagOs);
  std::unique_ptr<Module> m = parseModuleString((*buf)->getBuffer(), irPath, *sm, diag);
  if (!m || llvm::failed(verifyModule(*m, diag)))
    return Error(irPath + ": invalid program IR", diagOs.str());
  auto ck = m->attrs().find("checkpoint");
  if (ck == m->attrs().end() || ck->second.kind() != AttrKind::String ||
      ck->second.getString() != man->weights)
    return Error(irPath + ": the module's checkpoint attribute must name '" + man->weights + "'");
  if (options.progress)
    options.progress(Progress{"load", 1, 1, ""});
  // No pipeline: the IR is already lowered. buildProgram still checks every part against the
  // weights file (dtype, shape, size) and creates the executor.
  return buildProgram(target, std::move(sm), std::move(m), irPath, man->source, man->pipeline,
                      options, /*lower=*/false);
}

} // namespace api

Expected<Program> Program::load(const std::string &dir, const CompileOptions &options) {
  return api::loadProgram(dir, nullptr, options);
}

Expected<Program> Runtime::load(const std::string &dir, const CompileOptions &options) const {
  return api::loadProgram(dir, &target_, options);
}

} // namespace qlc
