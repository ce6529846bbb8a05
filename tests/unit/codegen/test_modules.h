// Test helpers that build modules from in-memory test weights: expert stacks written as inline
// hex parts, parsed, verified and lowered (moe_test.cpp, marlin_npu_test.cpp, w8a8_test.cpp).
#pragma once
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include "ir/diagnostics.h"
#include "ir/parser.h"
#include "ir/verifier.h"
#include "passes/pass.h"
#include "passes/pass_manager.h"
#include "schemes/all_schemes.h"
#include "tests/unit/codegen/test_weights.h"

namespace qlc::testw {

inline std::string hex(const std::vector<uint8_t> &b) {
  static const char d[] = "0123456789ABCDEF";
  std::string s;
  s.reserve(b.size() * 2);
  for (uint8_t x : b) {
    s += d[x >> 4];
    s += d[x & 15];
  }
  return s;
}

/// `weight @name : !type<..., experts = E> { part = tensor<Ex...> = hex"..." ... }` from E
/// per-expert test weights of the same type (the parts the first one has).
inline std::string stackedWeight(const std::string &name, const std::vector<TestWeight> &experts) {
  WeightType t = experts[0].type;
  t.params["experts"] = Attribute(int64_t(experts.size()));
  std::string s = "weight @" + name + " : " + t.str() + " {\n";
  bool first = true;
  for (const PartSpec &ps : t.expectedParts()) {
    auto it = experts[0].parts.find(ps.name);
    if (it == experts[0].parts.end())
      continue;
    std::vector<uint8_t> bytes;
    for (const TestWeight &e : experts) {
      const auto &b = e.parts.at(ps.name).second;
      bytes.insert(bytes.end(), b.begin(), b.end());
    }
    s += std::string(first ? "" : ",\n") + "  " + ps.name + " = " +
         TensorType(it->second.first, ps.shape).str() + " = hex\"" + hex(bytes) + "\"";
    first = false;
  }
  return s + "\n}\n";
}

/// `weight @name : !type<...> { part = tensor<...> = hex"..." ... }` of one test weight.
inline std::string denseWeight(const std::string &name, const TestWeight &tw) {
  std::string s = "weight @" + name + " : " + tw.type.str() + " {\n";
  bool first = true;
  for (const PartSpec &ps : tw.type.expectedParts()) {
    auto it = tw.parts.find(ps.name);
    if (it == tw.parts.end())
      continue;
    s += std::string(first ? "" : ",\n") + "  " + ps.name + " = " +
         TensorType(it->second.first, ps.shape).str() + " = hex\"" + hex(it->second.second) + "\"";
    first = false;
  }
  return s + "\n}\n";
}

/// Parses and verifies `text`, then runs `pipeline`; null (and a test failure with the
/// diagnostics) if any step fails.
inline std::unique_ptr<Module> parseAndLower(const std::string &text, llvm::SourceMgr &sm,
                                             const std::string &pipeline = "lower-cpu") {
  schemes::registerAllSchemes();
  registerGenericPasses();
  std::string errs;
  llvm::raw_string_ostream os(errs);
  DiagnosticEngine diag(&sm);
  diag.setStream(&os);
  auto m = parseModuleString(text, "test.qir", sm, diag);
  if (m && llvm::failed(verifyModule(*m, diag)))
    m.reset();
  if (m) {
    PassContext ctx{diag, nullptr};
    PassManager pm(ctx);
    EXPECT_EQ(pm.addPipeline(pipeline), "");
    if (llvm::failed(pm.run(*m)))
      m.reset();
  }
  EXPECT_TRUE(m) << errs;
  return m;
}

} // namespace qlc::testw
