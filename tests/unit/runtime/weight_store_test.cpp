// WeightStore: parts resolved against safetensors and GGUF checkpoints, with every mismatch between
// the IR and the file reported by name.
#include <gtest/gtest.h>

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

#include "io/gguf.h"
#include "io/safetensors.h"
#include "runtime/weight_store.h"
#include "support/float16.h"

using namespace qlc;

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    llvm::SmallString<128> p;
    EXPECT_FALSE(llvm::sys::fs::createUniqueDirectory("qlc-ws", p));
    path = std::string(p);
  }
  ~TempDir() { llvm::sys::fs::remove_directories(path); }
  std::string file(const char *name) const { return path + "/" + name; }
};

llvm::ArrayRef<uint8_t> bytesOf(const std::vector<float> &v) {
  return {reinterpret_cast<const uint8_t *>(v.data()), v.size() * 4};
}

Weight denseWeight(const char *name, TensorType t, std::vector<std::string> sources) {
  Weight w(name, t, Location{});
  w.parts().push_back({"data", t, std::move(sources), nullptr, {}});
  return w;
}

TEST(WeightStore, SafetensorsPartsAndStacks) {
  TempDir dir;
  io::SafetensorsWriter wr;
  std::vector<float> a = {1, 2, 3, 4}, b = {5, 6, 7, 8};
  wr.add("experts.0.w", io::DType::F32, {2, 2}, bytesOf(a));
  wr.add("experts.1.w", io::DType::F32, {2, 2}, bytesOf(b));
  ASSERT_FALSE(bool(wr.write(dir.file("model.safetensors"))));
  auto store = WeightStore::open(dir.path);
  ASSERT_TRUE(bool(store)) << llvm::toString(store.takeError());

  Weight one = denseWeight("one", TensorType(ElemKind::F32, {2, 2}), {"experts.1.w"});
  auto v = dequantizeWeight(one, store->get());
  ASSERT_TRUE(bool(v)) << llvm::toString(v.takeError());
  EXPECT_EQ(*v, b); // zero-copy view of the mapped file, converted

  Weight stack = denseWeight("stack", TensorType(ElemKind::F32, {2, 2, 2}),
                             {"experts.0.w", "experts.1.w"});
  auto s = dequantizeWeight(stack, store->get());
  ASSERT_TRUE(bool(s)) << llvm::toString(s.takeError());
  EXPECT_EQ(*s, (std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8}));

  // The IR says f16 but the file holds f32: named error, not a reinterpretation.
  Weight wrong = denseWeight("wrong", TensorType(ElemKind::F16, {2, 2}), {"experts.0.w"});
  auto e = dequantizeWeight(wrong, store->get());
  ASSERT_FALSE(bool(e));
  std::string msg = llvm::toString(e.takeError());
  EXPECT_NE(msg.find("model.safetensors: tensor 'experts.0.w' is F32 [2, 2] but the IR expects "
                     "tensor<2x2xf16>"),
            std::string::npos)
      << msg;
  Weight missing = denseWeight("missing", TensorType(ElemKind::F32, {2, 2}), {"nope"});
  auto m = dequantizeWeight(missing, store->get());
  ASSERT_FALSE(bool(m));
  EXPECT_NE(llvm::toString(m.takeError()).find("no tensor 'nope'"), std::string::npos);
}

TEST(WeightStore, GgufBytesAreChecked) {
  TempDir dir;
  io::GgufWriter wr;
  std::vector<uint16_t> h = {floatToHalf(1.5f), floatToHalf(-2.0f)};
  wr.addString("general.architecture", "llama");
  wr.addTensor("t", {2, 1}, /*F16*/ 1, {reinterpret_cast<const uint8_t *>(h.data()), 4});
  std::string path = dir.file("m.gguf");
  ASSERT_FALSE(bool(wr.write(path)));
  auto store = WeightStore::open(path);
  ASSERT_TRUE(bool(store)) << llvm::toString(store.takeError());
  Weight ok = denseWeight("t", TensorType(ElemKind::F16, {1, 2}), {"t"});
  auto v = dequantizeWeight(ok, store->get());
  ASSERT_TRUE(bool(v)) << llvm::toString(v.takeError());
  EXPECT_EQ(*v, (std::vector<float>{1.5f, -2.0f}));
  Weight big = denseWeight("t", TensorType(ElemKind::F16, {2, 2}), {"t"});
  auto e = dequantizeWeight(big, store->get());
  ASSERT_FALSE(bool(e));
  EXPECT_NE(llvm::toString(e.takeError()).find("tensor 't' has 4 bytes but the IR expects"),
            std::string::npos);
}

TEST(WeightStore, OpenErrorsNameThePath) {
  auto s = WeightStore::open("/nonexistent/model.gguf");
  ASSERT_FALSE(bool(s));
  EXPECT_NE(llvm::toString(s.takeError()).find("/nonexistent/model.gguf"), std::string::npos);
}

} // namespace
