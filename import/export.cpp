#include "import/export.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include "import/importer.h"
#include "io/dtype.h"
#include "io/quant_config.h"
#include "io/safetensors.h"
#include "ir/diagnostics.h"
#include "ir/parser.h"
#include "ir/printer.h"
#include "ir/verifier.h"
#include "runtime/weight_store.h"

namespace qlc {


llvm::Error exportCheckpoint(const Module &m, const WeightStore *store, llvm::StringRef dir,
                             llvm::StringRef layout) {
  if (std::error_code ec = llvm::sys::fs::create_directories(dir))
    return importError(dir + ": cannot create: " + ec.message());
  std::unique_ptr<Module> out = m.clone();
  io::SafetensorsWriter writer;
  for (const auto &w : out->weights()) {
    const Weight *src = m.lookupWeight(w->name());
    for (WeightPart &p : w->parts()) {
      auto bytes = resolvePart(*src, *src->part(p.name), store);
      if (!bytes)
        return bytes.takeError();
      std::string tensor = w->name() + "." + (w->isDense() ? std::string("weight") : p.name);
      writer.add(tensor, io::dtypeOf(p.type.elem), p.type.dims, bytes->bytes);
      p.sources = {tensor};
      p.data.reset();
    }
  }
  out->attrs()["checkpoint"] = Attribute(std::string("model.safetensors"));
  writer.setMetadata("format", "pt");
  writer.setMetadata("qlc_layout", layout.str());
  llvm::SmallString<256> st(dir), qir(dir), cfg(dir);
  llvm::sys::path::append(st, "model.safetensors");
  llvm::sys::path::append(qir, "model.qir");
  llvm::sys::path::append(cfg, "config.json");
  if (llvm::Error e = writer.write(st))
    return e;
  std::error_code ec;
  {
    llvm::raw_fd_ostream os(qir, ec, llvm::sys::fs::OF_Text);
    if (ec)
      return importError(qir + ": cannot write: " + ec.message());
    printModule(*out, os);
  }
  llvm::raw_fd_ostream os(cfg, ec, llvm::sys::fs::OF_Text);
  if (ec)
    return importError(cfg + ": cannot write: " + ec.message());
  llvm::json::Object q{{"quant_method", "qlc"}, {"layout", layout.str()}, {"ir", "model.qir"}};
  llvm::json::Object root{{"quantization_config", std::move(q)}};
  os << llvm::formatv("{0:2}", llvm::json::Value(std::move(root))) << "\n";
  return llvm::Error::success();
}

llvm::Expected<std::unique_ptr<Module>> readExportedCheckpoint(llvm::StringRef dir) {
  if (!llvm::sys::fs::is_directory(dir))
    return nullptr;
  llvm::SmallString<256> cfgPath(dir);
  llvm::sys::path::append(cfgPath, "config.json");
  if (!llvm::sys::fs::exists(cfgPath))
    return nullptr;
  auto cfg = io::loadQuantConfig(dir);
  if (!cfg)
    return cfg.takeError();
  auto method = cfg->quantization.getString("quant_method");
  if (!method || *method != "qlc")
    return nullptr;
  auto irName = cfg->quantization.getString("ir");
  if (!irName)
    return importError(cfgPath + ": quantization_config of a qlc export names no 'ir' file");
  llvm::SmallString<256> qir(dir);
  llvm::sys::path::append(qir, *irName);
  auto buf = llvm::MemoryBuffer::getFile(qir, /*IsText=*/true);
  if (!buf)
    return importError(qir + ": cannot open: " + buf.getError().message());
  llvm::SourceMgr sm;
  unsigned id = sm.AddNewSourceBuffer(std::move(*buf), llvm::SMLoc());
  std::string errs;
  llvm::raw_string_ostream es(errs);
  DiagnosticEngine diag(&sm);
  diag.setStream(&es);
  auto m = parseModule(sm, id, diag);
  if (!m || llvm::failed(verifyModule(*m, diag)))
    return importError(qir + ": invalid exported module:\n" + errs);
  // The checkpoint is named relative to the export; make it absolute for the module's users.
  auto it = m->attrs().find("checkpoint");
  if (it != m->attrs().end() && it->second.kind() == AttrKind::String &&
      llvm::sys::path::is_relative(it->second.getString())) {
    llvm::SmallString<256> abs(dir);
    llvm::sys::path::append(abs, it->second.getString());
    llvm::sys::fs::make_absolute(abs);
    it->second = Attribute(std::string(abs));
  }
  return m;
}

} // namespace qlc
