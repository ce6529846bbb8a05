#include "passes/pass_manager.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

#include "ir/diagnostics.h"
#include "ir/printer.h"
#include "ir/verifier.h"

namespace qlc {

//===----------------------------------------------------------------------===//
// Options
//===----------------------------------------------------------------------===//

const char *passOptionKindName(PassOptionSpec::Kind k) {
  switch (k) {
  case PassOptionSpec::Kind::Int: return "integer";
  case PassOptionSpec::Kind::Bool: return "bool";
  case PassOptionSpec::Kind::String: return "string";
  case PassOptionSpec::Kind::Enum: return "enum";
  case PassOptionSpec::Kind::Bytes: return "bytes";
  case PassOptionSpec::Kind::Float: return "float";
  }
  return "?";
}

std::optional<uint64_t> parseByteSize(llvm::StringRef s) {
  s = s.trim();
  size_t i = 0;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.'))
    ++i;
  llvm::StringRef num = s.substr(0, i), unit = s.substr(i).trim();
  double v;
  if (num.empty() || num.getAsDouble(v) || v < 0)
    return std::nullopt;
  double mult = 1;
  std::string u = unit.lower();
  if (u.empty() || u == "b") mult = 1;
  else if (u == "k" || u == "kb") mult = 1e3;
  else if (u == "m" || u == "mb") mult = 1e6;
  else if (u == "g" || u == "gb") mult = 1e9;
  else if (u == "t" || u == "tb") mult = 1e12;
  else if (u == "kib") mult = 1024.0;
  else if (u == "mib") mult = 1024.0 * 1024;
  else if (u == "gib") mult = 1024.0 * 1024 * 1024;
  else if (u == "tib") mult = 1024.0 * 1024 * 1024 * 1024;
  else return std::nullopt;
  double bytes = v * mult;
  if (bytes >= 1.8e19)
    return std::nullopt;
  return uint64_t(bytes);
}

std::string checkPassOptionValue(const PassOptionSpec &spec, const std::string &value) {
  llvm::StringRef v(value);
  switch (spec.kind) {
  case PassOptionSpec::Kind::Int: {
    int64_t i;
    if (v.getAsInteger(10, i))
      return "expects an integer, got '" + value + "'";
    return "";
  }
  case PassOptionSpec::Kind::Float: {
    double d;
    if (v.getAsDouble(d))
      return "expects a number, got '" + value + "'";
    return "";
  }
  case PassOptionSpec::Kind::Bool:
    if (v != "true" && v != "false" && v != "1" && v != "0")
      return "expects true or false, got '" + value + "'";
    return "";
  case PassOptionSpec::Kind::String: return "";
  case PassOptionSpec::Kind::Enum: {
    std::string list;
    for (const std::string &c : spec.choices) {
      if (c == value)
        return "";
      list += (list.empty() ? "" : "|") + c;
    }
    return "expects one of " + list + ", got '" + value + "'";
  }
  case PassOptionSpec::Kind::Bytes:
    if (!parseByteSize(v))
      return "expects a byte size such as 1000, 512MiB or 16GiB, got '" + value + "'";
    return "";
  }
  return "";
}

int64_t PassOptions::getInt(const std::string &name) const {
  int64_t i = 0;
  llvm::StringRef(values_.at(name)).getAsInteger(10, i);
  return i;
}
bool PassOptions::getBool(const std::string &name) const {
  const std::string &v = values_.at(name);
  return v == "true" || v == "1";
}
double PassOptions::getFloat(const std::string &name) const {
  double d = 0;
  llvm::StringRef(values_.at(name)).getAsDouble(d);
  return d;
}
const std::string &PassOptions::getString(const std::string &name) const { return values_.at(name); }
uint64_t PassOptions::getBytes(const std::string &name) const {
  return parseByteSize(values_.at(name)).value_or(0);
}

//===----------------------------------------------------------------------===//
// Registry
//===----------------------------------------------------------------------===//

PassRegistry &PassRegistry::get() {
  static PassRegistry r;
  return r;
}

void PassRegistry::add(PassInfo info) {
  if (passes_.count(info.name) || pipelines_.count(info.name)) {
    std::fprintf(stderr, "qlc: pass '%s' registered twice\n", info.name.c_str());
    std::abort();
  }
  std::string name = info.name;
  passes_[name] = std::make_unique<PassInfo>(std::move(info));
}

void PassRegistry::addPipeline(PipelineInfo info) {
  if (passes_.count(info.name) || pipelines_.count(info.name)) {
    std::fprintf(stderr, "qlc: pipeline '%s' registered twice\n", info.name.c_str());
    std::abort();
  }
  std::string name = info.name;
  pipelines_[name] = std::make_unique<PipelineInfo>(std::move(info));
}

const PassInfo *PassRegistry::lookup(llvm::StringRef name) const {
  auto it = passes_.find(name);
  return it == passes_.end() ? nullptr : it->second.get();
}
const PipelineInfo *PassRegistry::lookupPipeline(llvm::StringRef name) const {
  auto it = pipelines_.find(name);
  return it == pipelines_.end() ? nullptr : it->second.get();
}
std::vector<const PassInfo *> PassRegistry::passes() const {
  std::vector<const PassInfo *> v;
  for (const auto &[k, p] : passes_)
    v.push_back(p.get());
  return v;
}
std::vector<const PipelineInfo *> PassRegistry::pipelines() const {
  std::vector<const PipelineInfo *> v;
  for (const auto &[k, p] : pipelines_)
    v.push_back(p.get());
  return v;
}

//===----------------------------------------------------------------------===//
// PassManager
//===----------------------------------------------------------------------===//

PassManager::PassManager(PassContext &ctx, PassManagerOptions opts)
    : ctx_(ctx), opts_(std::move(opts)) {}
PassManager::~PassManager() = default;

std::string PassManager::addPipeline(llvm::StringRef text) { return addPipelineImpl(text, 0); }

static bool isPassNameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
}

std::string PassManager::addPipelineImpl(llvm::StringRef text, unsigned depth) {
  if (depth > 16)
    return "pipeline nesting too deep (a pipeline that names itself?)";
  size_t i = 0;
  auto skipSpace = [&] {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i])))
      ++i;
  };
  while (true) {
    skipSpace();
    if (i >= text.size())
      break;
    size_t b = i;
    while (i < text.size() && isPassNameChar(text[i]))
      ++i;
    std::string name = text.substr(b, i - b).str();
    if (name.empty())
      return "expected a pass name at position " + std::to_string(b) + " of '" + text.str() + "'";
    std::map<std::string, std::string> given;
    skipSpace();
    if (i < text.size() && text[i] == '{') {
      ++i;
      while (true) {
        skipSpace();
        if (i < text.size() && text[i] == '}') {
          ++i;
          break;
        }
        size_t kb = i;
        while (i < text.size() && isPassNameChar(text[i]))
          ++i;
        std::string key = text.substr(kb, i - kb).str();
        skipSpace();
        if (key.empty() || i >= text.size() || text[i] != '=')
          return "expected 'option=value' in the options of pass '" + name + "'";
        ++i;
        skipSpace();
        size_t vb = i;
        while (i < text.size() && !std::isspace(static_cast<unsigned char>(text[i])) &&
               text[i] != ',' && text[i] != '}')
          ++i;
        given[key] = text.substr(vb, i - vb).str();
        skipSpace();
        if (i < text.size() && text[i] == ',')
          ++i;
        if (i >= text.size())
          return "missing '}' after the options of pass '" + name + "'";
      }
    }
    if (const PipelineInfo *pl = PassRegistry::get().lookupPipeline(name)) {
      if (!given.empty())
        return "pipeline '" + name + "' takes no options (pass them to its passes)";
      std::string err = addPipelineImpl(pl->pipeline, depth + 1);
      if (!err.empty())
        return "in pipeline '" + name + "': " + err;
    } else {
      const PassInfo *info = PassRegistry::get().lookup(name);
      if (!info)
        return "unknown pass '" + name + "' (see --list-passes)";
      std::unique_ptr<Pass> p = info->create();
      p->info_ = info;
      for (const PassOptionSpec &spec : info->options)
        p->options_.set(spec.name, spec.defaultValue);
      for (const auto &[k, v] : given) {
        const PassOptionSpec *spec = nullptr;
        for (const PassOptionSpec &s : info->options)
          if (s.name == k)
            spec = &s;
        if (!spec) {
          std::string names;
          for (const PassOptionSpec &s : info->options)
            names += (names.empty() ? "" : ", ") + s.name;
          return "pass '" + name + "' has no option '" + k + "'" +
                 (names.empty() ? std::string(" (it takes none)") : " (options: " + names + ")");
        }
        std::string err = checkPassOptionValue(*spec, v);
        if (!err.empty())
          return "option '" + k + "' of pass '" + name + "' " + err;
        p->options_.set(k, v);
      }
      passes_.push_back(std::move(p));
    }
    skipSpace();
    if (i >= text.size())
      break;
    if (text[i] != ',')
      return "expected ',' between passes at position " + std::to_string(i) + " of '" +
             text.str() + "'";
    ++i;
  }
  return "";
}

llvm::LogicalResult PassManager::run(Module &m, llvm::raw_ostream *log) {
  llvm::raw_ostream &os = log ? *log : llvm::errs();
  using Clock = std::chrono::steady_clock;
  std::vector<std::pair<std::string, double>> times;
  auto total0 = Clock::now();
  PrintOptions po;
  po.locations = opts_.printLocations;
  po.elideInlineBytes = 0;
  size_t done = 0;
  for (auto &p : passes_) {
    const std::string &name = p->info().name;
    if (opts_.progress)
      opts_.progress(done++, passes_.size(), name);
    unsigned errorsBefore = ctx_.diag.numErrors();
    auto t0 = Clock::now();
    llvm::LogicalResult r = p->run(m, ctx_);
    times.push_back({name, std::chrono::duration<double>(Clock::now() - t0).count()});
    if (llvm::failed(r)) {
      if (ctx_.diag.numErrors() == errorsBefore)
        ctx_.diag.error({}, "pass '" + name + "' failed");
      return llvm::failure();
    }
    if (opts_.verifyEach && llvm::failed(verifyModule(m, ctx_.diag))) {
      ctx_.diag.error({}, "the IR is invalid after pass '" + name + "'");
      return llvm::failure();
    }
    if (opts_.printAfterAll || opts_.printAfter.count(name)) {
      os << "// -----// IR Dump After " << name << " //----- //\n";
      printModule(m, os, po);
      os << "\n";
    }
  }
  if (opts_.progress)
    opts_.progress(passes_.size(), passes_.size(), "");
  double total = std::chrono::duration<double>(Clock::now() - total0).count();
  if (opts_.statistics) {
    os << "===-------------------------------------------------------------------------===\n"
       << "                         ... Pass statistics report ...\n"
       << "===-------------------------------------------------------------------------===\n";
    for (auto &p : passes_) {
      os << p->info().name << "\n";
      for (const auto &[k, v] : p->statistics())
        os << "  (S) " << v << " " << k << "\n";
    }
  }
  if (opts_.timePasses) {
    os << "===-------------------------------------------------------------------------===\n"
       << "                      ... Pass execution timing report ...\n"
       << "===-------------------------------------------------------------------------===\n"
       << llvm::format("  Total Execution Time: %.4f seconds\n\n", total)
       << "  ----Wall Time----  ----Name----\n";
    for (const auto &[name, t] : times)
      os << llvm::format("  %8.4f (%5.1f%%)  ", t, total > 0 ? 100.0 * t / total : 0.0) << name
         << "\n";
    os << llvm::format("  %8.4f (100.0%%)  Total\n", total);
  }
  return llvm::success();
}

} // namespace qlc
