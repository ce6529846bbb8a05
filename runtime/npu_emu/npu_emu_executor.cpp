#include "runtime/npu_emu/npu_emu_executor.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "ir/op_registry.h"
#include "ir/printer.h"
#include "runtime/npu_emu/npu_emu_device.h"
#include "runtime/npu_emu/npu_emu_layouts.h"

namespace qlc::npu_emu {
namespace {

/// Value names as the printer writes them, and the op that reads each value last.
FunctionPlan planFunction(const Function &f) {
  FunctionPlan p;
  p.names = printedValueNames(f);
  size_t i = 0;
  for (const auto &op : f.ops()) {
    for (Value *o : op->operands())
      p.lastUse[o] = i;
    ++i;
  }
  return p;
}

/// The byte size each part of `w` must have for the kernels, or "" if the layout has none fixed.
std::string checkPartSizes(const Weight &w, const DeviceWeight &dw) {
  auto expect = [&](const char *part, uint64_t want) -> std::string {
    const DevicePart *p = dw.part(part);
    if (!p || p->bytes.size() == want)
      return "";
    return "npu-emu: weight @" + w.name() + " part '" + part + "' has " +
           std::to_string(p->bytes.size()) + " bytes, its type needs " + std::to_string(want);
  };
  std::vector<int64_t> s = w.logicalShape();
  if (w.isDense())
    return expect(dw.parts.begin()->first.c_str(),
                  uint64_t(elementsOf(s)) * elemKindBytes(w.denseType().elem));
  const std::string &mn = w.quantType().mnemonic();
  const int64_t e = std::max<int64_t>(1, w.experts());
  const size_t lead = w.experts() > 0 ? 1 : 0;
  const int64_t n = s[lead], k = s[lead + 1];
  if (mn == "npu_w4" || mn == "npu_w8") {
    const int64_t g = w.quantType().intParam("group"), groups = g == -1 ? 1 : k / g;
    const DevicePart *scale = dw.part("antiquant_scale");
    const uint64_t params =
        uint64_t(e * groups * n) * (scale ? elemKindBytes(scale->type.elem) : 0);
    const uint64_t codeBytes = mn == "npu_w4" ? uint64_t(e * k * n / 2) : uint64_t(e * k * n);
    for (std::string m : {expect("weight", codeBytes),
                          expect("antiquant_scale", params), expect("antiquant_offset", params)})
      if (!m.empty())
        return m;
  } else if (mn == "npu_w8a8") {
    for (std::string m :
         {expect("weight", uint64_t(k * n)), expect("weight_scale", uint64_t(4 * n))})
      if (!m.empty())
        return m;
  }
  return "";
}

llvm::Error fail(const llvm::Twine &msg) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), msg);
}

} // namespace

void DeviceRun::trace(llvm::StringRef what, const Location &loc, const std::string &value,
                      const OpCost &c) {
  if (!d_.opts.trace)
    return;
  llvm::raw_string_ostream os(trace_);
  os << "npu-emu: " << what << " " << loc.str() << " " << value << " h2d=" << c.h2d
     << " d2h=" << c.d2h << " read=" << c.read << " written=" << c.written << " flops=" << c.flops
     << "\n";
}

void DeviceRun::finish(bool ok) {
  d_.account(total_, ops_);
  if (!d_.opts.trace)
    return;
  llvm::raw_string_ostream os(trace_);
  os << "npu-emu: @" << f_.name() << (ok ? " done" : " failed") << ": ops=" << ops_
     << " h2d=" << total_.h2d << " d2h=" << total_.d2h << " read=" << total_.read
     << " written=" << total_.written << " flops=" << total_.flops << " peak=" << d_.mem.peak()
     << " capacity=" << d_.mem.capacity() << "\n";
  std::lock_guard<std::mutex> lock(d_.traceMu); // one call's lines stay together
  *d_.opts.trace << trace_;
  d_.opts.trace->flush();
}

llvm::Expected<DeviceTensor> DeviceRun::result(const Operation &op, unsigned i,
                                               const std::vector<int64_t> &shape) {
  const ElemKind elem = op.result(i)->type().elem;
  auto a = d_.mem.allocate(uint64_t(elementsOf(shape)) * elemKindBytes(elem),
                           plan_.names.at(op.result(i)) + " (result of '" + op.name() + "' at " +
                               op.loc().str() + ")");
  if (!a)
    return a.takeError();
  return DeviceTensor{Tensor(elem, shape), std::move(*a)};
}

llvm::Expected<DeviceAllocation> DeviceRun::workspace(const Operation &op, uint64_t bytes) {
  return d_.mem.allocate(bytes, "the workspace of '" + op.name() + "' at " + op.loc().str());
}

llvm::Error DeviceRun::runOp(const Operation &op, Outs &outs, OpCost &cost) {
  Ins ins;
  for (Value *v : op.operands()) {
    const Tensor &t = env_.at(v).data;
    ins.push_back(&t);
    cost.read += t.numBytes();
  }
  const std::string &n = op.name();
  if (n == "npu.weight_quant_batchmatmul")
    return weightQuantBatchMatmul(op, ins, outs, cost);
  if (n == "npu.moe_gating_topk")
    return gatingTopK(op, ins, outs, cost);
  if (n == "npu.fused_experts")
    return fusedExperts(op, ins, outs, cost);
  if (n == "npu.dynamic_quant")
    return dynamicQuant(op, ins, outs, cost);
  if (n == "npu.quant_matmul")
    return quantMatmul(op, ins, outs, cost);
  if (n == "linear")
    return linear(op, ins, outs, cost);
  if (n == "moe")
    return moe(op, ins, outs, cost);
  if (n == "embedding")
    return embedding(op, ins, outs, cost);
  if (n == "rms_norm")
    return rmsNorm(op, ins, outs, cost);
  return referenceOp(op, ins, outs, cost); // create() admitted only the core elementwise ops
}

llvm::Expected<std::vector<Tensor>> DeviceRun::run(const std::vector<Tensor> &inputs) {
  const std::string fname = "@" + f_.name();
  if (inputs.size() != f_.numArguments())
    return fail(fname + " takes " + llvm::Twine(f_.numArguments()) + " inputs, got " +
                llvm::Twine(inputs.size()));
  // Host-to-device copies of the activations.
  for (unsigned i = 0; i < f_.numArguments(); ++i) {
    const Value *arg = f_.argument(i);
    const TensorType &t = arg->type();
    if (inputs[i].elem() != t.elem || !shapeFits(inputs[i].shape(), t))
      return fail("input #" + llvm::Twine(i) + " of " + fname + " is " + inputs[i].typeStr() +
                  " but the function takes " + t.str());
    const std::string &name = plan_.names.at(arg);
    auto a = d_.mem.allocate(inputs[i].numBytes(), "input " + name + " of " + fname);
    if (!a)
      return a.takeError();
    OpCost c;
    c.h2d = c.written = inputs[i].numBytes();
    trace("copy.h2d", f_.loc(), name, c);
    total_ += c;
    if (plan_.lastUse.count(arg))
      env_[arg] = DeviceTensor{inputs[i], std::move(*a)};
  }
  size_t index = 0;
  for (const auto &opPtr : f_.ops()) {
    const Operation &op = *opPtr;
    if (op.isTerminator()) {
      // Device-to-host copies of the results; then every device tensor of the call is freed.
      std::vector<Tensor> results;
      for (Value *v : op.operands()) {
        const Tensor &t = env_.at(v).data;
        OpCost c;
        c.d2h = c.read = t.numBytes();
        trace("copy.d2h", op.loc(), plan_.names.at(v), c);
        total_ += c;
        results.push_back(t);
      }
      env_.clear();
      return results;
    }
    Outs outs;
    OpCost cost;
    if (llvm::Error e = runOp(op, outs, cost))
      return e;
    if (outs.size() != op.numResults())
      return opError(op, "npu-emu: produced " + llvm::Twine(outs.size()) + " results, declares " +
                             llvm::Twine(op.numResults()));
    for (unsigned i = 0; i < op.numResults(); ++i) {
      const Tensor &t = outs[i].data;
      const TensorType &want = op.result(i)->type();
      if (t.elem() != want.elem || !shapeFits(t.shape(), want))
        return opError(op, "npu-emu: result #" + llvm::Twine(i) + " is " + t.typeStr() +
                               " but the op declares " + want.str());
      cost.written += t.numBytes();
    }
    ++ops_;
    trace(op.name(), op.loc(), op.numResults() ? plan_.names.at(op.result(0)) : "-", cost);
    total_ += cost;
    // Free what this op read for the last time, and results nothing reads.
    for (Value *v : op.operands())
      if (plan_.lastUse.at(v) == index)
        env_.erase(v);
    for (unsigned i = 0; i < op.numResults(); ++i)
      if (plan_.lastUse.count(op.result(i)))
        env_[op.result(i)] = std::move(outs[i]);
    ++index;
  }
  return fail(fname + " has no return");
}

} // namespace qlc::npu_emu

namespace qlc {

using namespace npu_emu;

struct NpuEmuExecutor::Impl : DeviceState {
  using DeviceState::DeviceState;
};

NpuEmuExecutor::NpuEmuExecutor() = default;
NpuEmuExecutor::~NpuEmuExecutor() = default;

llvm::Expected<std::unique_ptr<NpuEmuExecutor>>
NpuEmuExecutor::create(const Module &m, const WeightStore *store, NpuEmuOptions opts) {
  registerCoreOps();
  std::unique_ptr<NpuEmuExecutor> ex(new NpuEmuExecutor());
  ex->impl_ = std::make_unique<Impl>(m, opts);
  DeviceState &d = *ex->impl_;
  // Every op must be one the device runs, on layouts it takes: checked before any upload.
  std::vector<std::string> used;
  std::set<std::string> seen;
  for (const auto &f : m.functions()) {
    for (const auto &op : f->ops()) {
      if (llvm::Error e = npu_emu::checkDeviceOp(m, *op))
        return e;
      for (const std::string &s : op->symbols())
        if (seen.insert(s).second)
          used.push_back(s);
    }
    d.plans.emplace(f.get(), planFunction(*f));
  }
  // Host-to-device copies of the weights, once; each part is its own device buffer.
  uint64_t uploaded = 0;
  for (const std::string &name : used) {
    const Weight &w = *m.lookupWeight(name);
    DeviceWeight dw;
    dw.weight = &w;
    for (const WeightPart &p : w.parts()) {
      auto host = resolvePart(w, p, store);
      if (!host)
        return host.takeError();
      auto a = d.mem.allocate(host->bytes.size(), "weight @" + w.name() + " part '" + p.name + "'");
      if (!a)
        return a.takeError();
      DevicePart dp{p.type, std::vector<uint8_t>(host->bytes.begin(), host->bytes.end()),
                    std::move(*a)};
      dw.bytes += dp.bytes.size();
      dw.parts.emplace(p.name, std::move(dp));
    }
    if (std::string e = checkPartSizes(w, dw); !e.empty())
      return fail(w.loc().str() + ": " + e);
    uploaded += dw.bytes;
    d.weights.emplace(name, std::move(dw));
  }
  d.stats.h2dBytes = d.stats.weightBytes = uploaded;
  if (opts.trace)
    *opts.trace << "npu-emu: create: weights=" << used.size() << " h2d=" << uploaded
                << " in_use=" << d.mem.inUse() << " capacity=" << d.mem.capacity() << "\n";
  return ex;
}

llvm::Expected<std::vector<Tensor>> NpuEmuExecutor::run(llvm::StringRef func,
                                                        const std::vector<Tensor> &inputs) {
  DeviceState &d = *impl_;
  const Function *f = d.m.lookupFunction(func);
  if (!f)
    return fail("no function @" + func + " in the module");
  DeviceRun r(d, *f, d.plans.at(f));
  auto outs = r.run(inputs);
  r.finish(bool(outs));
  return outs;
}

NpuEmuExecutor::Stats NpuEmuExecutor::stats() const {
  std::lock_guard<std::mutex> lock(impl_->statsMu);
  Stats s = impl_->stats;
  s.peakDeviceBytes = impl_->mem.peak();
  return s;
}

} // namespace qlc
