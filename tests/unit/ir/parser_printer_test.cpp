// Parser and printer: round trips, located diagnostics, and robustness against malformed input.
#include <gtest/gtest.h>

#include <random>

#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include "ir/diagnostics.h"
#include "ir/ir.h"
#include "ir/parser.h"
#include "ir/printer.h"
#include "ir/verifier.h"
#include "schemes/all_schemes.h"

using namespace qlc;

namespace {

struct ParseResult {
  std::unique_ptr<Module> module;
  std::string errors; // every diagnostic, printed with source line and caret
};

ParseResult parse(const std::string &text) {
  schemes::registerAllSchemes();
  ParseResult r;
  llvm::SourceMgr sm;
  llvm::raw_string_ostream os(r.errors);
  DiagnosticEngine diag(&sm);
  diag.setStream(&os);
  r.module = parseModuleString(text, "test.qir", sm, diag);
  if (r.module && llvm::failed(verifyModule(*r.module, diag)))
    r.module.reset();
  return r;
}

const std::string kMlpTemplate = R"(module attributes {checkpoint = "dir", version = 2}

weight @gate : tensor<16x8xf16> {
  data = tensor<16x8xf16> from "model.layers.0.mlp.gate_proj.weight"
}

weight @up : !awq<group = 8, shape = [16, 8]> {
  qweight = tensor<8x2xi32> from "up.qweight",
  qzeros = tensor<1x2xi32> from "up.qzeros",
  scales = tensor<1x16xf16> from "up.scales"
}

weight @down : tensor<8x16xf16> {
  data = tensor<8x16xf16> = hex"@DATA@"
}

weight @norm : tensor<8xf16> {
  data = tensor<8xf16> from "model.layers.0.post_attention_layernorm.weight"
}

func @mlp(%x: tensor<?x8xf16>) -> tensor<?x8xf16> {
  %h = rms_norm %x, @norm {eps = 1e-05} : tensor<?x8xf16>
  %g = linear %h, @gate : tensor<?x16xf16>
  %u = linear %h, @up : tensor<?x16xf16>
  %a = silu %g : tensor<?x16xf16>
  %m = mul %a, %u : tensor<?x16xf16>
  %y = linear %m, @down : tensor<?x8xf16>
  %r = add %x, %y : tensor<?x8xf16>
  return %r
}
)";

// 256 bytes of f16 data with a varied pattern (so byte order mistakes show).
std::string makeMlp() {
  std::string hex;
  static const char d[] = "0123456789ABCDEF";
  for (int i = 0; i < 256; ++i) {
    hex += d[(i * 7) >> 4 & 15];
    hex += d[(i * 7 + 3) & 15];
  }
  std::string s = kMlpTemplate;
  s.replace(s.find("@DATA@"), 6, hex);
  return s;
}
const std::string kMlp = makeMlp();

TEST(ParserPrinter, RoundTripIsExact) {
  ParseResult r = parse(kMlp);
  ASSERT_TRUE(r.module) << r.errors;
  std::string printed = printModuleToString(*r.module);
  EXPECT_EQ(printed, kMlp);
  ParseResult again = parse(printed);
  ASSERT_TRUE(again.module) << again.errors;
  EXPECT_EQ(printModuleToString(*again.module), printed);
}

TEST(ParserPrinter, LocationsPointAtTheSource) {
  ParseResult r = parse(kMlp);
  ASSERT_TRUE(r.module);
  const Function *f = r.module->lookupFunction("mlp");
  const Operation &first = *f->ops().front();
  EXPECT_EQ(first.loc().file, "test.qir");
  EXPECT_EQ(first.loc().line, 22u);
  EXPECT_EQ(first.loc().col, 8u); // the op name
  PrintOptions po;
  po.locations = true;
  std::string withLocs = printModuleToString(*r.module, po);
  EXPECT_NE(withLocs.find("rms_norm %x, @norm {eps = 1e-05} : tensor<?x8xf16> loc(\"test.qir\":22:8)"),
            std::string::npos)
      << withLocs;
  // Explicit locations parse back and win over the position in the new text.
  ParseResult again = parse(withLocs);
  ASSERT_TRUE(again.module) << again.errors;
  EXPECT_EQ(again.module->lookupFunction("mlp")->ops().front()->loc().line, 22u);
  EXPECT_EQ(printModuleToString(*again.module, po), withLocs);
}

TEST(ParserPrinter, ErrorsAreLocatedWithCaret) {
  ParseResult r = parse("func @f(%x: tensor<4xf32>) -> tensor<4xf32> {\n"
                        "  %y = silu %z\n"
                        "  return %y\n"
                        "}\n");
  EXPECT_FALSE(r.module);
  EXPECT_EQ(r.errors, "test.qir:2:13: error: use of undefined value %z\n"
                      "  %y = silu %z\n"
                      "            ^\n");
}

TEST(ParserPrinter, SchemeParametersAreChecked) {
  ParseResult r = parse("weight @w : !awq<group = 8, shape = [16, 12]> {\n}\n");
  EXPECT_FALSE(r.module);
  EXPECT_NE(r.errors.find("K = 12"), std::string::npos) << r.errors;
  r = parse("weight @w : !awq<group = 8, shape = [16, 8], colour = 3> {\n}\n");
  EXPECT_NE(r.errors.find("unknown parameter 'colour' for !awq"), std::string::npos) << r.errors;
  r = parse("weight @w : !nope<a = 1> {\n}\n");
  EXPECT_NE(r.errors.find("unknown weight type '!nope' (registered: !awq"), std::string::npos)
      << r.errors;
}

TEST(ParserPrinter, ExpertStackPrefixesParts) {
  ParseResult r = parse("weight @w : !awq<group = 8, shape = [16, 8], experts = 3> {\n"
                        "  qweight = tensor<3x8x2xi32> from \"a\",\n"
                        "  qzeros = tensor<3x1x2xi32> from \"b\",\n"
                        "  scales = tensor<3x1x16xf16> from \"c\"\n"
                        "}\n");
  ASSERT_TRUE(r.module) << r.errors;
  EXPECT_EQ(r.module->lookupWeight("w")->logicalShape(), (std::vector<int64_t>{3, 16, 8}));
  r = parse("weight @w : !awq<group = 8, shape = [16, 8], experts = 3> {\n"
            "  qweight = tensor<8x2xi32> from \"a\",\n"
            "  qzeros = tensor<3x1x2xi32> from \"b\",\n"
            "  scales = tensor<3x1x16xf16> from \"c\"\n"
            "}\n");
  EXPECT_NE(r.errors.find("part 'qweight' of weight @w has shape [8, 2] but"), std::string::npos)
      << r.errors;
  EXPECT_NE(r.errors.find("needs [3, 8, 2]"), std::string::npos) << r.errors;
}

TEST(ParserPrinter, StackedSourcesRoundTrip) {
  const std::string text = "weight @w : tensor<2x4x8xf16> {\n"
                           "  data = tensor<2x4x8xf16> from [\"experts.0.w\", \"experts.1.w\"]\n"
                           "}\n";
  ParseResult r = parse(text);
  ASSERT_TRUE(r.module) << r.errors;
  EXPECT_EQ(r.module->lookupWeight("w")->parts()[0].sources.size(), 2u);
  EXPECT_EQ(printModuleToString(*r.module), text);
  r = parse("weight @w : tensor<3x4x8xf16> {\n"
            "  data = tensor<3x4x8xf16> from [\"a\", \"b\"]\n"
            "}\n");
  EXPECT_NE(r.errors.find("stacks 2 tensors, so its leading dim must be 2"), std::string::npos)
      << r.errors;
}

// Every prefix of a valid module, and random mutations of it, must give a clean diagnostic or a
// module, never a crash. (The fuzz targets go much further; this keeps the property in CI.)
TEST(ParserPrinter, TruncationsAndMutationsNeverCrash) {
  std::string text = kMlp;
  for (size_t n = 0; n < text.size(); n += 3) {
    ParseResult r = parse(text.substr(0, n));
    if (!r.module) {
      EXPECT_NE(r.errors.find("error: "), std::string::npos) << "prefix " << n;
    }
  }
  std::mt19937 rng(7);
  for (int i = 0; i < 400; ++i) {
    std::string m = text;
    for (int j = 0; j < 4; ++j)
      m[rng() % m.size()] = char(rng() % 256);
    ParseResult r = parse(m);
    if (!r.module) {
      EXPECT_NE(r.errors.find("error: "), std::string::npos);
    }
  }
}

} // namespace
