#include "runtime/cpu/cpu_executor.h"

#include <cmath>
#include <cstring>
#include <optional>
#include <unordered_map>

#include "codegen/moe.h"
#include "codegen/qmatmul.h"
#include "codegen/repack.h"
#include "codegen/thread_pool.h"
#include "ir/op_registry.h"
#include "support/float16.h"

namespace qlc {

CpuExecutor::CpuExecutor(const Module &m, const WeightStore *store, CpuExecutorOptions opts)
    : m_(m), store_(store), opts_(opts), ref_(m, store) {
  if (opts_.threads == 0) {
    pool_ = &codegen::ThreadPool::global();
  } else {
    ownPool_ = std::make_unique<codegen::ThreadPool>(opts_.threads);
    pool_ = ownPool_.get();
  }
}

CpuExecutor::~CpuExecutor() = default;

void CpuExecutor::note(const std::string &reason, const std::string &msg) {
  std::lock_guard<std::mutex> lock(notesMu_);
  if (!noted_.insert(reason).second || !opts_.notes)
    return;
  *opts_.notes << "qlc: note: cpu: " << msg << "\n";
}

llvm::Expected<const CpuExecutor::Prepared *> CpuExecutor::prepare(const Operation &op,
                                                                    const Weight &w) {
  // Held while preparing: concurrent calls prepare each weight once; entries are never erased.
  std::lock_guard<std::mutex> lock(preparedMu_);
  if (auto it = prepared_.find(w.name()); it != prepared_.end())
    return it->second.get();
  codegen::SpecOrReason sr = codegen::specForWeight(w);
  if (!sr.spec) {
    note(sr.reason, "no JIT kernel for @" + w.name() + " (" + sr.reason + "); " + op.name() +
                        " ops on this layout run through the reference");
    prepared_[w.name()] = nullptr;
    return nullptr;
  }
  auto p = std::make_unique<Prepared>();
  p->spec = *sr.spec;
  p->experts = w.experts();
  const int64_t stacks = std::max<int64_t>(1, p->experts);
  auto fractional = npuFractionalOffset(w, p->spec);
  if (!fractional)
    return fractional.takeError();
  if (!fractional->empty()) {
    p->spec.act = codegen::Activations::F32;
    note("npu-offset:" + w.name(), "@" + w.name() + " has " + *fractional +
                                       "; its kernels keep f32 activations");
  }
  for (const std::string &slot : p->spec.partSlots()) {
    if (slot.empty()) {
      p->ptrs.push_back(nullptr);
      p->strides.push_back(0);
      continue;
    }
    const WeightPart *part = w.part(slot);
    if (!part)
      return opError(op, "weight @" + w.name() + " has no part '" + slot + "'");
    auto bytes = resolvePart(w, *part, store_);
    if (!bytes)
      return bytes.takeError();
    if (bytes->bytes.size() % size_t(stacks))
      return opError(op, "@" + w.name() + " part '" + slot + "' does not split into " +
                             llvm::Twine(stacks) + " experts");
    const size_t slotIndex = p->ptrs.size();
    if (codegen::isRepackedPart(p->spec, slotIndex)) { // re-laid-out once, the same size
      const int64_t expect = stacks * codegen::repackedPartBytes(p->spec, slotIndex);
      if (int64_t(bytes->bytes.size()) != expect)
        return opError(op, "@" + w.name() + " part '" + slot + "' has " +
                               llvm::Twine(bytes->bytes.size()) + " bytes, expected " +
                               llvm::Twine(expect));
      auto owned = std::make_shared<std::vector<uint8_t>>(bytes->bytes.size());
      codegen::repackPart(p->spec, slotIndex, bytes->bytes.data(), owned->data(), stacks);
      *bytes = PartBytes{*owned, owned};
    }
    p->ptrs.push_back(bytes->bytes.data());
    p->strides.push_back(int64_t(bytes->bytes.size()) / stacks);
    p->parts.push_back(std::move(*bytes));
  }
  // Group indices address scales and zeros: check them once, as the reference hook does.
  const codegen::KernelSpec &s = p->spec;
  if (s.gIdx) {
    const WeightPart *gp = w.part(s.partSlots()[3]);
    auto bytes = resolvePart(w, *gp, store_);
    if (!bytes)
      return bytes.takeError();
    int64_t groups = (s.k + s.group - 1) / s.group;
    if (int64_t(bytes->bytes.size()) != 4 * s.k * stacks)
      return opError(op, "@" + w.name() + " g_idx has " + llvm::Twine(bytes->bytes.size()) +
                             " bytes, expected " + llvm::Twine(4 * s.k * stacks));
    for (int64_t k = 0; k < s.k * stacks; ++k) {
      int32_t g;
      std::memcpy(&g, bytes->bytes.data() + 4 * k, 4);
      if (g < 0 || g >= groups)
        return opError(op, "@" + w.name() + " g_idx[" + llvm::Twine(k / s.k) + ", " +
                               llvm::Twine(k % s.k) + "] = " + llvm::Twine(g) +
                               " is not a group index (0.." + llvm::Twine(groups - 1) + ")");
    }
  }
  if (s.layout == codegen::Layout::Marlin && s.gIdx)
    if (llvm::Error e = checkMarlinActOrder(op, w, *p))
      return e;
  return (prepared_[w.name()] = std::move(p)).get();
}

llvm::Expected<std::string> CpuExecutor::npuFractionalOffset(const Weight &w, const codegen::KernelSpec &s) {
  // The NPU int8 kernels fold the zero 2^(b-1) - offset into integer dot products (as AWQ's):
  // an offset that is not an integer in [2^(b-1) - (2^b - 1), 2^(b-1)] has no such zero.
  const bool npu = s.layout == codegen::Layout::NpuW4 || s.layout == codegen::Layout::NpuW8;
  if (!npu || s.act != codegen::Activations::Int8 || !s.zeroPoint)
    return "";
  const WeightPart *part = w.part("antiquant_offset");
  if (!part)
    return ""; // reported by the part loop
  auto bytes = resolvePart(w, *part, store_);
  if (!bytes)
    return bytes.takeError();
  const llvm::ArrayRef<uint8_t> raw = bytes->bytes;
  const ElemKind e = part->type.elem;
  const size_t eb = e == ElemKind::F32 ? 4 : 2;
  const float hi = float(1 << (s.bits - 1)), lo = hi - float((1 << s.bits) - 1);
  for (size_t i = 0; i + eb <= raw.size(); i += eb) {
    float f;
    if (e == ElemKind::F32) {
      std::memcpy(&f, raw.data() + i, 4);
    } else {
      uint16_t h;
      std::memcpy(&h, raw.data() + i, 2);
      f = e == ElemKind::BF16 ? bf16ToFloat(h) : halfToFloat(h);
    }
    if (!(f >= lo && f <= hi && f == std::nearbyint(f)))
      return "antiquant_offset[" + std::to_string(i / eb) + "] = " + std::to_string(f) +
             ", not an integer in [" + std::to_string(int(lo)) + ", " + std::to_string(int(hi)) +
             "]";
  }
  return "";
}

llvm::Error CpuExecutor::checkMarlinActOrder(const Operation &op, const Weight &w,
                                             const Prepared &p) {
  // The kernel reads x through perm and the scales through g_idx: the reference hook's checks
  // (perm a permutation, g_idx sorted; g_idx ranges are checked above), per expert.
  const int64_t K = p.spec.k, stacks = std::max<int64_t>(1, p.experts);
  const auto *gIdx = reinterpret_cast<const uint8_t *>(p.ptrs[3]);
  const auto *perm = reinterpret_cast<const uint8_t *>(p.ptrs[4]);
  auto at = [](const uint8_t *base, int64_t i) {
    int32_t v;
    std::memcpy(&v, base + 4 * i, 4);
    return v;
  };
  std::vector<bool> seen;
  for (int64_t e = 0; e < stacks; ++e) {
    std::string where = p.experts ? "expert " + std::to_string(e) + " " : "";
    seen.assign(size_t(K), false);
    for (int64_t k = 0; k < K; ++k) {
      int32_t v = at(perm + e * p.strides[4], k);
      if (v < 0 || v >= K || seen[size_t(v)])
        return opError(op, "@" + w.name() + " " + where + "perm[" + llvm::Twine(k) + "] = " +
                               llvm::Twine(v) +
                               (v < 0 || v >= K ? " is not a row index"
                                                : " repeats an earlier entry: perm must be a "
                                                  "permutation"));
      seen[size_t(v)] = true;
      if (k > 0 && at(gIdx + e * p.strides[3], k) < at(gIdx + e * p.strides[3], k - 1))
        return opError(op, "@" + w.name() + " " + where + "g_idx is not sorted at row " +
                               llvm::Twine(k) + " (Marlin's rows are reordered by perm)");
    }
  }
  return llvm::Error::success();
}

llvm::Error CpuExecutor::qmatmul(const Operation &op, const Prepared &p, const Tensor &x,
                                 std::vector<Tensor> &outs) {
  const codegen::KernelSpec &s = p.spec;
  if (x.shape().empty() || x.shape().back() != s.k)
    return opError(op, "input " + x.typeStr() + " does not have K = " + llvm::Twine(s.k));
  int64_t rows = 1;
  for (size_t i = 0; i + 1 < x.shape().size(); ++i)
    rows *= x.shape()[i];
  std::vector<float> xf = x.toF32();
  std::vector<float> y(size_t(rows * s.n));
  if (llvm::Error e = codegen::runQMatmul(s, p.ptrs.data(), xf.data(), rows, y.data(), pool_))
    return e;
  if (op.symbols().size() == 2) {
    auto bias = ref_.weight(op.symbols()[1]);
    if (!bias)
      return bias.takeError();
    if (int64_t((*bias)->size()) != s.n)
      return opError(op, "bias has " + llvm::Twine((*bias)->size()) + " elements, expected " +
                             llvm::Twine(s.n));
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < s.n; ++j)
        y[size_t(r * s.n + j)] += (**bias)[size_t(j)];
  }
  std::vector<int64_t> shape = x.shape();
  shape.back() = s.n;
  outs.push_back(Tensor::fromF32As(op.result(0)->type().elem, shape, y));
  return llvm::Error::success();
}

llvm::Expected<bool> CpuExecutor::expertWeights(const Operation &op,
                                                std::vector<codegen::ExpertWeight> &ws) {
  for (const std::string &name : op.symbols()) {
    const Weight *w = m_.lookupWeight(name);
    if (!w)
      return opError(op, "names no weight @" + name);
    auto p = prepare(op, *w);
    if (!p)
      return p.takeError();
    if (!*p) {
      note(op.name(), op.name() + " ops with a weight without a JIT kernel run through the reference");
      return false;
    }
    if ((*p)->experts <= 0)
      return opError(op, "weight @" + name + " is not expert-stacked");
    ws.push_back(codegen::ExpertWeight::stacked((*p)->spec, (*p)->experts, (*p)->ptrs, (*p)->strides));
  }
  return true;
}

llvm::Expected<bool> CpuExecutor::moe(const Operation &op, const std::vector<const Tensor *> &ins,
                                      std::vector<Tensor> &outs) {
  const bool unfused = op.symbols().size() == 3;
  std::vector<codegen::ExpertWeight> ws;
  auto have = expertWeights(op, ws);
  if (!have || !*have)
    return have;
  const codegen::ExpertWeight &w13 = ws[0], &w2 = ws[unfused ? 2 : 1];
  const codegen::ExpertWeight *upW = unfused ? &ws[1] : nullptr;
  const Tensor &x = *ins[0], &logits = *ins[1];
  if (x.shape().size() != 2 || x.shape()[1] != w13.spec.k || logits.shape().size() != 2 ||
      logits.shape()[0] != x.shape()[0] || logits.shape()[1] != w13.experts)
    return opError(op, "operands " + x.typeStr() + ", " + logits.typeStr() +
                           " do not fit the experts");
  codegen::MoeConfig cfg;
  cfg.topK = op.attr("top_k")->getInt();
  const Attribute *ren = op.attr("renormalize");
  cfg.renormalize = ren && ren->getBool();
  const Attribute *act = op.attr("activation");
  cfg.gelu = act && act->getIdent() == "gelu";
  int64_t t = x.shape()[0], h = x.shape()[1];
  std::vector<float> xf = x.toF32(), lf = logits.toF32(), y(size_t(t * h));
  if (llvm::Error e = codegen::runMoe(w13, upW, w2, cfg, xf.data(), lf.data(), t,
                                      y.data(), pool_))
    return opError(op, llvm::toString(std::move(e)));
  outs.push_back(Tensor::fromF32As(op.result(0)->type().elem, {t, h}, y));
  return true;
}

llvm::Expected<bool> CpuExecutor::fusedExperts(const Operation &op,
                                               const std::vector<const Tensor *> &ins,
                                               std::vector<Tensor> &outs) {
  std::vector<codegen::ExpertWeight> ws;
  auto have = expertWeights(op, ws);
  if (!have || !*have)
    return have;
  const codegen::ExpertWeight &w13 = ws[0], &w2 = ws[1];
  const Tensor &x = *ins[0], &topkWeights = *ins[1], &topkIds = *ins[2];
  if (x.shape().size() != 2 || x.shape()[1] != w13.spec.k || topkIds.shape().size() != 2 ||
      topkWeights.shape() != topkIds.shape() || topkIds.shape()[0] != x.shape()[0])
    return opError(op, "operands " + x.typeStr() + ", " + topkWeights.typeStr() + ", " +
                           topkIds.typeStr() + " do not fit the experts");
  const int64_t t = x.shape()[0], h = x.shape()[1], k = topkIds.shape()[1], e = w13.experts;
  // The routing is the op's input (npu.moe_gating_topk's result): ids checked as the reference
  // does, weights used as given (f32 -> f64), slot order kept for the combine.
  std::vector<float> ti = topkIds.toF32(), tw = topkWeights.toF32();
  std::vector<int64_t> experts(size_t(t * k));
  std::vector<double> weights(size_t(t * k));
  for (int64_t i = 0; i < t * k; ++i) {
    float id = ti[size_t(i)];
    if (!(id >= 0 && id < float(e)))
      return opError(op, "topk_ids[" + llvm::Twine(i / k) + ", " + llvm::Twine(i % k) +
                             "] = " + llvm::Twine(int64_t(id)) + " is not an expert in [0, " +
                             llvm::Twine(e) + ")");
    experts[size_t(i)] = int64_t(id);
    weights[size_t(i)] = double(tw[size_t(i)]);
  }
  codegen::MoeConfig cfg;
  cfg.topK = k; // npu_swiglu: silu
  std::vector<float> xf = x.toF32(), y(size_t(t * h));
  if (llvm::Error err = codegen::runMoeRouted(w13, nullptr, w2, cfg, xf.data(), experts, weights,
                                              t, y.data(), pool_))
    return opError(op, llvm::toString(std::move(err)));
  outs.push_back(Tensor::fromF32As(op.result(0)->type().elem, {t, h}, y));
  return true;
}

llvm::Expected<std::vector<Tensor>> CpuExecutor::run(llvm::StringRef funcName,
                                                     const std::vector<Tensor> &inputs) {
  return runFunction(m_, funcName, inputs,
                     [&](const Operation &op, const std::vector<const Tensor *> &ins,
                         std::vector<Tensor> &outs) { return runOp(op, ins, outs); });
}

llvm::Error CpuExecutor::runOp(const Operation &op, const std::vector<const Tensor *> &ins,
                               std::vector<Tensor> &outs) {
  // Linear ops on a quantized weight: cpu.qmatmul (fuse-dequant), marlin.gemm (lower-marlin),
  // npu.weight_quant_batchmatmul (lower-npu); `linear` semantics, optional bias symbol 1.
  if (op.name() == "cpu.qmatmul" || op.name() == "marlin.gemm" ||
      op.name() == "npu.weight_quant_batchmatmul") {
    const Weight *w = m_.lookupWeight(op.symbols()[0]);
    if (!w)
      return opError(op, "names no weight @" + op.symbols()[0]);
    auto p = prepare(op, *w);
    if (!p)
      return p.takeError();
    if (*p) {
      ++jitOps_;
      return qmatmul(op, **p, *ins[0], outs);
    }
    ++fallbacks_;
  } else if (op.name() == "cpu.moe" || op.name() == "marlin.moe") {
    auto ran = moe(op, ins, outs);
    if (!ran)
      return ran.takeError();
    if (*ran) {
      ++jitOps_;
      return llvm::Error::success();
    }
    ++fallbacks_;
  } else if (op.name() == "npu.fused_experts") {
    auto ran = fusedExperts(op, ins, outs);
    if (!ran)
      return ran.takeError();
    if (*ran) {
      ++jitOps_;
      return llvm::Error::success();
    }
    ++fallbacks_;
  } else if (op.name() == "npu.quant_matmul") {
    note(op.name(), "no JIT kernel for npu.quant_matmul (W8A8: int8 activations from "
                    "npu.dynamic_quant times an int8 weight, not a dequant GEMM); it runs through "
                    "the reference");
    ++fallbacks_;
  }
  const ReferenceOpFn *fn = lookupReferenceOp(op.name());
  if (!fn)
    return opError(op, "has no reference implementation");
  ++referenceOps_;
  return (*fn)(ref_, op, ins, outs);
}

} // namespace qlc
