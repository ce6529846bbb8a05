// IR generation of the fused dequant kernels. Two loop families (KernelSpec::family):
//
// RowsK (GGUF Q8_0/Q4_0/Q4_K/Q6_K, compressed-tensors 4-bit): the codes of one output channel n
//   are contiguous along K. Accumulators are <VL x float> vectors along K, one per (row of x,
//   output channel) of the register tile, reduced horizontally (shuffle tree) at the end.
//   The K loop walks "units" (a GGUF block, or 16 CT codes); inside a unit every vector of VL
//   weights is unpacked from the block (loads of bytes / words, shifts, masks, int->float, the
//   block's scales) right before the FMAs that consume it.
// ColsN (AWQ, GPTQ 4-bit): the codes of consecutive output channels are contiguous. Accumulators
//   are <W x float> vectors along N; per k one broadcast x[m, k] times the unpacked weight vector
//   of W channels (outer product), no horizontal reduction.
//
// gemv (M <= 8): n-tile outer, m-tile (4 or 1 rows) inner, K innermost with the unpacking in it:
//   weights go from their packed bytes to registers and never to memory.
// gemm (M > 8): m-blocks of kGemmMB rows; per n-tile the tile's weights are unpacked once into
//   `scratch` (kRowsNR rows x K, or K x one column vector) and reused by all rows of the m-block.
//
// FP: unpacking uses the reference's exact operation order (fmul / fsub without contraction), so
// the f32 weights equal the schemes' reference dequantization bit for bit; products are
// accumulated with llvm.fmuladd (an FMA where the host has one).
#include "codegen/kernel_emitter.h"

#include <functional>

#include "llvm/IR/IRBuilder.h"
#include "llvm/IR/Intrinsics.h"
#include "llvm/IR/Module.h"
#include "llvm/IR/Verifier.h"
#include "llvm/TargetParser/Host.h"
#include "llvm/ADT/StringMap.h"

namespace qlc::codegen {
namespace {

using namespace llvm;

class Emitter {
public:
  Emitter(const KernelSpec &s, LLVMContext &c, Module &m)
      : s_(s), C(c), M_(m), b(c), VL(s.lanes()) {
    f32 = Type::getFloatTy(C);
    f16 = Type::getHalfTy(C);
    i8 = Type::getInt8Ty(C);
    i16 = Type::getInt16Ty(C);
    i32 = Type::getInt32Ty(C);
    i64 = Type::getInt64Ty(C);
    ptr = PointerType::get(C, 0);
  }

  Function *emit();

private:
  // ---- helpers -------------------------------------------------------------------------------
  Value *c64(int64_t v) { return b.getInt64(uint64_t(v)); }
  Value *c32(int32_t v) { return b.getInt32(uint32_t(v)); }
  VectorType *vf(int w) { return FixedVectorType::get(f32, w); }
  VectorType *vi(Type *t, int w) { return FixedVectorType::get(t, w); }

  AllocaInst *slot(Type *t, const Twine &name = "") {
    IRBuilder<> eb(&F->getEntryBlock(), F->getEntryBlock().begin());
    return eb.CreateAlloca(t, nullptr, name);
  }
  Value *gep(Type *t, Value *base, Value *idx) { return b.CreateInBoundsGEP(t, base, idx); }
  Value *gepB(Value *base, Value *byteOff) { return b.CreateInBoundsGEP(i8, base, byteOff); }
  Value *load(Type *t, Value *p, unsigned align) { return b.CreateAlignedLoad(t, p, Align(align)); }
  void store(Value *v, Value *p, unsigned align) { b.CreateAlignedStore(v, p, Align(align)); }
  Value *splat(int w, Value *v) { return b.CreateVectorSplat(w, v); }
  Value *fma(Value *a, Value *x, Value *acc) {
    return b.CreateIntrinsic(Intrinsic::fmuladd, {a->getType()}, {a, x, acc});
  }
  Value *constVecI32(const std::vector<int32_t> &v) {
    std::vector<Constant *> cs;
    for (int32_t x : v)
      cs.push_back(ConstantInt::get(i32, uint32_t(x)));
    return ConstantVector::get(cs);
  }
  Value *constVecI8(const std::vector<int> &v) {
    std::vector<Constant *> cs;
    for (int x : v)
      cs.push_back(ConstantInt::get(i8, uint64_t(x) & 0xFF));
    return ConstantVector::get(cs);
  }

  /// for (iv = begin; iv < limit; iv += step) body(iv); returns the exit value of iv.
  Value *loop(Value *begin, Value *limit, int64_t step, const std::function<void(Value *)> &body,
              const std::string &name) {
    BasicBlock *pre = b.GetInsertBlock();
    BasicBlock *hdr = BasicBlock::Create(C, name + ".hdr", F);
    BasicBlock *bb = BasicBlock::Create(C, name + ".body", F);
    BasicBlock *ex = BasicBlock::Create(C, name + ".exit", F);
    b.CreateBr(hdr);
    b.SetInsertPoint(hdr);
    PHINode *iv = b.CreatePHI(i64, 2, name);
    iv->addIncoming(begin, pre);
    b.CreateCondBr(b.CreateICmpSLT(iv, limit), bb, ex);
    b.SetInsertPoint(bb);
    body(iv);
    Value *next = b.CreateAdd(iv, c64(step), name + ".next", false, true);
    iv->addIncoming(next, b.GetInsertBlock());
    b.CreateBr(hdr);
    b.SetInsertPoint(ex);
    return iv;
  }

  /// Horizontal sum of a float vector (pairwise shuffle tree, no intrinsic call).
  Value *hsum(Value *v) {
    int w = int(cast<FixedVectorType>(v->getType())->getNumElements());
    while (w > 1) {
      std::vector<int> lo, hi;
      for (int i = 0; i < w / 2; ++i) {
        lo.push_back(i);
        hi.push_back(i + w / 2);
      }
      v = b.CreateFAdd(b.CreateShuffleVector(v, lo), b.CreateShuffleVector(v, hi));
      w /= 2;
    }
    return b.CreateExtractElement(v, uint64_t(0));
  }

  /// Scale of the given element type at element index `idx` of `base`, as f32 (exact).
  Value *loadScaleScalar(Value *base, Value *idx) {
    switch (s_.scaleElem) {
    case ElemKind::F32:
      return load(f32, gep(f32, base, idx), 1);
    case ElemKind::BF16: {
      Value *h = load(i16, gep(i16, base, idx), 1);
      return b.CreateBitCast(b.CreateShl(b.CreateZExt(h, i32), 16), f32);
    }
    default:
      return b.CreateFPExt(load(f16, gep(f16, base, idx), 1), f32);
    }
  }
  Value *loadScaleVec(Value *base, Value *idx, int w) {
    switch (s_.scaleElem) {
    case ElemKind::F32:
      return load(vf(w), gep(f32, base, idx), 1);
    case ElemKind::BF16: {
      Value *h = load(vi(i16, w), gep(i16, base, idx), 1);
      return b.CreateBitCast(b.CreateShl(b.CreateZExt(h, vi(i32, w)), splat(w, c32(16))), vf(w));
    }
    default:
      return b.CreateFPExt(load(vi(f16, w), gep(f16, base, idx), 1), vf(w));
    }
  }
  Value *halfAt(Value *base, int64_t off) {
    return b.CreateFPExt(load(f16, gepB(base, c64(off)), 1), f32);
  }

  // ---- RowsK layouts -------------------------------------------------------------------------
  struct Unit {
    Value *base = nullptr; // GGUF: block start; CT: first word of the unit
    Value *n = nullptr, *u = nullptr;
    Value *d = nullptr, *dmin = nullptr;
    Value *s = nullptr, *z = nullptr; // CT uniform group: scale (f32), zero (i32)
    std::vector<Value *> dl, ml;      // Q4_K per sub-block
  };
  int64_t unitK() const {
    switch (s_.layout) {
    case Layout::GgufQ4_K:
    case Layout::GgufQ6_K:
      return 256;
    case Layout::CtWna16_4:
      return VL >= 16 ? 16 : 8;
    default:
      return 32;
    }
  }
  int64_t blockBytes() const {
    switch (s_.layout) {
    case Layout::GgufQ8_0: return 34;
    case Layout::GgufQ4_0: return 18;
    case Layout::GgufQ4_K: return 144;
    case Layout::GgufQ6_K: return 210;
    default: return 0;
    }
  }
  int64_t ctRowWords() const { return (s_.k + 7) / 8; }
  int64_t ctGroups() const { return s_.k / s_.group; }
  bool ctUniformGroups() const { return !s_.gIdx && s_.group % unitK() == 0; }
  int64_t nUnits() const { return s_.k / unitK(); }

  Value *rowBase(Value *n) {
    if (s_.layout == Layout::CtWna16_4)
      return gepB(P[0], b.CreateMul(n, c64(ctRowWords() * 4)));
    return gepB(P[0], b.CreateMul(n, c64(s_.k / unitK() * blockBytes())));
  }

  /// CT: group of element k (i64) -> (scale f32, zero i32) for output channel n.
  std::pair<Value *, Value *> ctScaleZero(Value *n, Value *g) {
    Value *sc = loadScaleScalar(P[1], b.CreateAdd(b.CreateMul(n, c64(ctGroups())), g));
    Value *z = c32(8);
    if (s_.zeroPoint) {
      Value *w = load(i32, gep(i32, P[2], b.CreateAdd(b.CreateMul(b.CreateUDiv(n, c64(8)),
                                                                    c64(ctGroups())), g)), 1);
      Value *sh = b.CreateTrunc(b.CreateMul(b.CreateURem(n, c64(8)), c64(4)), i32);
      z = b.CreateAnd(b.CreateLShr(w, sh), c32(15));
    }
    return {sc, z};
  }
  Value *ctGroupOf(Value *k) {
    if (s_.gIdx)
      return b.CreateSExt(load(i32, gep(i32, P[3], k), 1), i64);
    return b.CreateUDiv(k, c64(s_.group));
  }

  Unit setupUnit(Value *rowB, Value *n, Value *u) {
    Unit t;
    t.n = n;
    t.u = u;
    switch (s_.layout) {
    case Layout::GgufQ8_0:
    case Layout::GgufQ4_0:
      t.base = gepB(rowB, b.CreateMul(u, c64(blockBytes())));
      t.d = halfAt(t.base, 0);
      break;
    case Layout::GgufQ4_K:
      t.base = gepB(rowB, b.CreateMul(u, c64(blockBytes())));
      t.d = halfAt(t.base, 0);
      t.dmin = halfAt(t.base, 2);
      t.dl.assign(8, nullptr);
      t.ml.assign(8, nullptr);
      break;
    case Layout::GgufQ6_K:
      t.base = gepB(rowB, b.CreateMul(u, c64(blockBytes())));
      t.d = halfAt(t.base, 208);
      break;
    case Layout::CtWna16_4: {
      t.base = gep(i32, rowB, b.CreateMul(u, c64(unitK() / 8)));
      if (ctUniformGroups()) {
        auto [sc, z] = ctScaleZero(n, b.CreateUDiv(b.CreateMul(u, c64(unitK())), c64(s_.group)));
        t.s = sc;
        t.z = z;
      }
      break;
    }
    default:
      break;
    }
    return t;
  }

  Value *byteAt(Value *base, int64_t off) { return load(i8, gepB(base, c64(off)), 1); }

  /// Q4_K get_scale_min_k4 for sub-block j: (sc, m) as f32 products d*sc, dmin*m.
  void q4kScales(Unit &t, int j) {
    if (t.dl[j])
      return;
    Value *scb = gepB(t.base, c64(4));
    Value *sc, *m;
    if (j < 4) {
      sc = b.CreateAnd(byteAt(scb, j), 63);
      m = b.CreateAnd(byteAt(scb, j + 4), 63);
    } else {
      Value *bj4 = byteAt(scb, j + 4), *bjm4 = byteAt(scb, j - 4), *bj = byteAt(scb, j);
      sc = b.CreateOr(b.CreateAnd(bj4, 0xF), b.CreateShl(b.CreateLShr(bjm4, 6), 4));
      m = b.CreateOr(b.CreateLShr(bj4, 4), b.CreateShl(b.CreateLShr(bj, 6), 4));
    }
    t.dl[j] = b.CreateFMul(t.d, b.CreateUIToFP(sc, f32));
    t.ml[j] = b.CreateFMul(t.dmin, b.CreateUIToFP(m, f32));
  }

  /// The j-th vector of VL weights of a unit (elements unit*unitK + j*VL ...).
  Value *unitVec(Unit &t, int j) {
    const int64_t i0 = int64_t(j) * VL;
    switch (s_.layout) {
    case Layout::GgufQ8_0: {
      Value *q = load(vi(i8, VL), gepB(t.base, c64(2 + i0)), 1);
      return b.CreateFMul(b.CreateSIToFP(q, vf(VL)), splat(VL, t.d));
    }
    case Layout::GgufQ4_0: {
      Value *q = load(vi(i8, VL), gepB(t.base, c64(2 + i0 % 16)), 1);
      if (i0 >= 16)
        q = b.CreateLShr(q, splat(VL, b.getInt8(4)));
      q = b.CreateAnd(q, splat(VL, b.getInt8(15)));
      Value *v = b.CreateSub(b.CreateZExt(q, vi(i32, VL)), splat(VL, c32(8)));
      return b.CreateFMul(b.CreateSIToFP(v, vf(VL)), splat(VL, t.d));
    }
    case Layout::GgufQ4_K: {
      int64_t c = i0 / 64, hi = (i0 % 64) / 32, l0 = i0 % 32;
      int sb = int(i0 / 32);
      q4kScales(t, sb);
      Value *q = load(vi(i8, VL), gepB(t.base, c64(16 + 32 * c + l0)), 1);
      if (hi)
        q = b.CreateLShr(q, splat(VL, b.getInt8(4)));
      q = b.CreateAnd(q, splat(VL, b.getInt8(15)));
      Value *qf = b.CreateUIToFP(q, vf(VL));
      return b.CreateFSub(b.CreateFMul(splat(VL, t.dl[sb]), qf), splat(VL, t.ml[sb]));
    }
    case Layout::GgufQ6_K: {
      int64_t h = i0 / 128, tt = i0 % 128, quad = tt / 32, l0 = tt % 32;
      Value *ql = load(vi(i8, VL), gepB(t.base, c64(64 * h + l0 + 32 * (quad & 1))), 1);
      if (quad >> 1)
        ql = b.CreateLShr(ql, splat(VL, b.getInt8(4)));
      ql = b.CreateAnd(ql, splat(VL, b.getInt8(15)));
      Value *qh = load(vi(i8, VL), gepB(t.base, c64(128 + 32 * h + l0)), 1);
      if (quad)
        qh = b.CreateLShr(qh, splat(VL, b.getInt8(uint8_t(2 * quad))));
      qh = b.CreateShl(b.CreateAnd(qh, splat(VL, b.getInt8(3))), splat(VL, b.getInt8(4)));
      Value *q = b.CreateSub(b.CreateZExt(b.CreateOr(ql, qh), vi(i32, VL)), splat(VL, c32(32)));
      Value *sc = b.CreateSIToFP(load(i8, gepB(t.base, c64(192 + i0 / 16)), 1), f32);
      Value *dl = b.CreateFMul(t.d, sc);
      return b.CreateFMul(splat(VL, dl), b.CreateSIToFP(q, vf(VL)));
    }
    case Layout::CtWna16_4: {
      // Lanes l: element i0 + l of the unit: word (i0 + l) / 8, nibble (i0 + l) % 8.
      int64_t w0 = i0 / 8, nw = (i0 % 8 + VL + 7) / 8;
      Value *words = load(vi(i32, int(nw)), gep(i32, t.base, c64(w0)), 1);
      std::vector<int> mask;
      std::vector<int32_t> shifts;
      for (int l = 0; l < VL; ++l) {
        int64_t rel = i0 % 8 + l;
        mask.push_back(int(rel / 8));
        shifts.push_back(int32_t(4 * (rel % 8)));
      }
      Value *v = b.CreateShuffleVector(words, mask);
      v = b.CreateAnd(b.CreateLShr(v, constVecI32(shifts)), splat(VL, c32(15)));
      Value *sv, *zv;
      if (ctUniformGroups()) {
        sv = splat(VL, t.s);
        zv = splat(VL, t.z);
      } else { // per-lane groups (g_idx, or groups not aligned to the unit): gather by lanes
        sv = UndefValue::get(vf(VL));
        zv = UndefValue::get(vi(i32, VL));
        Value *kBase = b.CreateAdd(b.CreateMul(t.u, c64(unitK())), c64(i0));
        for (int l = 0; l < VL; ++l) {
          Value *g = ctGroupOf(b.CreateAdd(kBase, c64(l)));
          auto [sc, z] = ctScaleZero(t.n, g);
          sv = b.CreateInsertElement(sv, sc, uint64_t(l));
          zv = b.CreateInsertElement(zv, z, uint64_t(l));
        }
      }
      return b.CreateFMul(b.CreateSIToFP(b.CreateSub(v, zv), vf(VL)), sv);
    }
    default:
      return nullptr;
    }
  }

  /// CT tail (K not a multiple of the unit): the scalar weight W[n, k].
  Value *ctScalar(Value *n, Value *k) {
    Value *w = load(i32, gep(i32, P[0], b.CreateAdd(b.CreateMul(n, c64(ctRowWords())),
                                                    b.CreateUDiv(k, c64(8)))), 1);
    Value *sh = b.CreateTrunc(b.CreateMul(b.CreateURem(k, c64(8)), c64(4)), i32);
    Value *code = b.CreateAnd(b.CreateLShr(w, sh), c32(15));
    auto [sc, z] = ctScaleZero(n, ctGroupOf(k));
    return b.CreateFMul(b.CreateSIToFP(b.CreateSub(code, z), f32), sc);
  }
  bool hasKTail() const { return s_.k % unitK() != 0; }

  /// gemv micro-kernel: rows [m0, m0+MR) x channels [n0, n0+R), weights unpacked in the K loop.
  void rowsGemvTile(Value *m0, int MR, Value *n0, int R) {
    std::vector<std::vector<AllocaInst *>> acc(MR, std::vector<AllocaInst *>(R));
    std::vector<std::vector<AllocaInst *>> tacc(MR, std::vector<AllocaInst *>(R));
    for (int i = 0; i < MR; ++i)
      for (int r = 0; r < R; ++r) {
        acc[i][r] = slot(vf(VL), "acc");
        store(Constant::getNullValue(vf(VL)), acc[i][r], 4);
        tacc[i][r] = slot(f32, "tacc");
        store(ConstantFP::get(f32, 0.0), tacc[i][r], 4);
      }
    std::vector<Value *> rows(R), rowB(R), xRow(MR);
    for (int r = 0; r < R; ++r) {
      rows[r] = b.CreateAdd(n0, c64(r));
      rowB[r] = rowBase(rows[r]);
    }
    for (int i = 0; i < MR; ++i)
      xRow[i] = gep(f32, X, b.CreateMul(b.CreateAdd(m0, c64(i)), c64(s_.k)));
    const int vpu = int(unitK() / VL);
    loop(c64(0), c64(nUnits()), 1, [&](Value *u) {
      std::vector<Unit> units;
      for (int r = 0; r < R; ++r)
        units.push_back(setupUnit(rowB[r], rows[r], u));
      Value *kU = b.CreateMul(u, c64(unitK()));
      for (int j = 0; j < vpu; ++j) {
        std::vector<Value *> w(R);
        for (int r = 0; r < R; ++r)
          w[r] = unitVec(units[r], j);
        for (int i = 0; i < MR; ++i) {
          Value *xv = load(vf(VL), gep(f32, xRow[i], b.CreateAdd(kU, c64(j * VL))), 4);
          for (int r = 0; r < R; ++r)
            store(fma(xv, w[r], load(vf(VL), acc[i][r], 4)), acc[i][r], 4);
        }
      }
    }, "u");
    if (hasKTail())
      loop(c64(nUnits() * unitK()), c64(s_.k), 1, [&](Value *k) {
        for (int r = 0; r < R; ++r) {
          Value *w = ctScalar(rows[r], k);
          for (int i = 0; i < MR; ++i) {
            Value *xs = load(f32, gep(f32, xRow[i], k), 4);
            store(fma(xs, w, load(f32, tacc[i][r], 4)), tacc[i][r], 4);
          }
        }
      }, "kt");
    for (int i = 0; i < MR; ++i)
      for (int r = 0; r < R; ++r) {
        Value *v = b.CreateFAdd(hsum(load(vf(VL), acc[i][r], 4)), load(f32, tacc[i][r], 4));
        Value *yi = b.CreateAdd(b.CreateMul(b.CreateAdd(m0, c64(i)), c64(s_.n)), rows[r]);
        store(v, gep(f32, Y, yi), 4);
      }
  }

  int64_t kPad() const { return (s_.k + VL - 1) / VL * VL; }

  /// gemm: unpack rows [n0, n0+R) into scratch[r * kPad + k] (zero padded).
  void rowsFillSlab(Value *n0, int R) {
    const int vpu = int(unitK() / VL);
    for (int r = 0; r < R; ++r) {
      Value *row = b.CreateAdd(n0, c64(r));
      Value *rb = rowBase(row);
      Value *slab = gep(f32, Scratch, c64(r * kPad()));
      loop(c64(0), c64(nUnits()), 1, [&](Value *u) {
        Unit t = setupUnit(rb, row, u);
        Value *kU = b.CreateMul(u, c64(unitK()));
        for (int j = 0; j < vpu; ++j)
          store(unitVec(t, j), gep(f32, slab, b.CreateAdd(kU, c64(j * VL))), 4);
      }, "fill");
      if (hasKTail())
        loop(c64(nUnits() * unitK()), c64(s_.k), 1, [&](Value *k) {
          store(ctScalar(row, k), gep(f32, slab, k), 4);
        }, "fillt");
      for (int64_t k = s_.k; k < kPad(); ++k)
        store(ConstantFP::get(f32, 0.0), gep(f32, slab, c64(k)), 4);
    }
  }

  /// gemm micro-kernel on the slab: rows [m0, m0+MR) x channels [n0, n0+R).
  void rowsSlabTile(Value *m0, int MR, Value *n0, int R) {
    std::vector<std::vector<AllocaInst *>> acc(MR, std::vector<AllocaInst *>(R));
    std::vector<std::vector<AllocaInst *>> tacc(MR, std::vector<AllocaInst *>(R));
    for (int i = 0; i < MR; ++i)
      for (int r = 0; r < R; ++r) {
        acc[i][r] = slot(vf(VL), "acc");
        store(Constant::getNullValue(vf(VL)), acc[i][r], 4);
        tacc[i][r] = slot(f32, "tacc");
        store(ConstantFP::get(f32, 0.0), tacc[i][r], 4);
      }
    std::vector<Value *> xRow(MR);
    for (int i = 0; i < MR; ++i)
      xRow[i] = gep(f32, X, b.CreateMul(b.CreateAdd(m0, c64(i)), c64(s_.k)));
    const int64_t kv = s_.k / VL;
    loop(c64(0), c64(kv * VL), VL, [&](Value *k) {
      std::vector<Value *> w(R);
      for (int r = 0; r < R; ++r)
        w[r] = load(vf(VL), gep(f32, Scratch, b.CreateAdd(k, c64(r * kPad()))), 4);
      for (int i = 0; i < MR; ++i) {
        Value *xv = load(vf(VL), gep(f32, xRow[i], k), 4);
        for (int r = 0; r < R; ++r)
          store(fma(xv, w[r], load(vf(VL), acc[i][r], 4)), acc[i][r], 4);
      }
    }, "k");
    if (s_.k % VL)
      loop(c64(kv * VL), c64(s_.k), 1, [&](Value *k) {
        for (int r = 0; r < R; ++r) {
          Value *w = load(f32, gep(f32, Scratch, b.CreateAdd(k, c64(r * kPad()))), 4);
          for (int i = 0; i < MR; ++i) {
            Value *xs = load(f32, gep(f32, xRow[i], k), 4);
            store(fma(xs, w, load(f32, tacc[i][r], 4)), tacc[i][r], 4);
          }
        }
      }, "kt");
    for (int i = 0; i < MR; ++i)
      for (int r = 0; r < R; ++r) {
        Value *v = b.CreateFAdd(hsum(load(vf(VL), acc[i][r], 4)), load(f32, tacc[i][r], 4));
        Value *yi = b.CreateAdd(b.CreateMul(b.CreateAdd(m0, c64(i)), c64(s_.n)),
                                b.CreateAdd(n0, c64(r)));
        store(v, gep(f32, Y, yi), 4);
      }
  }

  /// m-tiles of 4 then 1 rows over [mBegin, mEnd).
  void mTiles(Value *mBegin, Value *mEnd, const std::function<void(Value *, int)> &tile) {
    Value *m = loop(mBegin, b.CreateSub(mEnd, c64(3)), 4, [&](Value *m0) { tile(m0, 4); }, "m4");
    loop(m, mEnd, 1, [&](Value *m0) { tile(m0, 1); }, "m1");
  }

  void emitRowsK() {
    if (s_.mclass == MClass::Gemv) {
      auto nTile = [&](Value *n0, int R) {
        mTiles(c64(0), Mrows, [&](Value *m0, int MR) { rowsGemvTile(m0, MR, n0, R); });
      };
      Value *n = loop(NB, b.CreateSub(NE, c64(kRowsNR - 1)), kRowsNR,
                      [&](Value *n0) { nTile(n0, kRowsNR); }, "n4");
      loop(n, NE, 1, [&](Value *n0) { nTile(n0, 1); }, "n1");
      return;
    }
    loop(c64(0), Mrows, kGemmMB, [&](Value *mb) {
      Value *mbEnd = b.CreateAdd(mb, c64(kGemmMB));
      Value *mEnd = b.CreateSelect(b.CreateICmpSLT(mbEnd, Mrows), mbEnd, Mrows);
      auto nTile = [&](Value *n0, int R) {
        rowsFillSlab(n0, R);
        mTiles(mb, mEnd, [&](Value *m0, int MR) { rowsSlabTile(m0, MR, n0, R); });
      };
      Value *n = loop(NB, b.CreateSub(NE, c64(kRowsNR - 1)), kRowsNR,
                      [&](Value *n0) { nTile(n0, kRowsNR); }, "n4");
      loop(n, NE, 1, [&](Value *n0) { nTile(n0, 1); }, "n1");
    }, "mb");
  }

  // ---- ColsN layouts -------------------------------------------------------------------------
  /// Per-group zero (i32 vector, or null for the constant 8) and scale vector of W channels at n.
  struct ColGroup {
    Value *z = nullptr, *s = nullptr;
  };
  ColGroup colGroup(Value *g, Value *n, int W) {
    ColGroup cg;
    const int64_t N = s_.n;
    cg.s = loadScaleVec(P[2], b.CreateAdd(b.CreateMul(g, c64(N)), n), W);
    if (s_.layout == Layout::Awq4 || s_.zeroPoint) {
      // qzeros [G', N/8]: words of channels n .. n+W; AWQ interleaved, GPTQ sequential.
      Value *wIdx = b.CreateAdd(b.CreateMul(g, c64(N / 8)), b.CreateUDiv(n, c64(8)));
      Value *words = load(vi(i32, W / 8), gep(i32, P[1], wIdx), 1);
      cg.z = unpackCols(words, W, s_.layout == Layout::Awq4);
      if (s_.layout == Layout::Gptq4 && s_.gptqV1)
        cg.z = b.CreateAdd(cg.z, splat(W, c32(1)));
    } else {
      cg.z = splat(W, c32(8));
    }
    return cg;
  }
  /// <W/8 x i32> words packed along N -> <W x i32> codes in channel order.
  Value *unpackCols(Value *words, int W, bool awq) {
    static const int kRev[8] = {0, 4, 1, 5, 2, 6, 3, 7};
    std::vector<int> mask;
    std::vector<int32_t> shifts;
    for (int l = 0; l < W; ++l) {
      mask.push_back(l / 8);
      shifts.push_back(4 * (awq ? kRev[l % 8] : l % 8));
    }
    Value *v = b.CreateShuffleVector(words, mask);
    return b.CreateAnd(b.CreateLShr(v, constVecI32(shifts)), splat(W, c32(15)));
  }
  Value *colWeights(Value *codes, const ColGroup &cg, int W) {
    return b.CreateFMul(b.CreateSIToFP(b.CreateSub(codes, cg.z), vf(W)), cg.s);
  }

  /// Walks K for channels n0 + v*W (v < NV), calling body(k, weight vectors) for every k.
  void colsK(Value *n0, int NV, int W, const std::function<void(Value *, std::vector<Value *> &)> &body) {
    const int64_t N = s_.n, K = s_.k, G = s_.group;
    std::vector<Value *> ns(NV);
    for (int v = 0; v < NV; ++v)
      ns[v] = b.CreateAdd(n0, c64(int64_t(v) * W));
    if (s_.layout == Layout::Awq4) {
      loop(c64(0), c64(K / G), 1, [&](Value *g) {
        std::vector<ColGroup> cg;
        for (int v = 0; v < NV; ++v)
          cg.push_back(colGroup(g, ns[v], W));
        loop(b.CreateMul(g, c64(G)), b.CreateMul(b.CreateAdd(g, c64(1)), c64(G)), 1, [&](Value *k) {
          std::vector<Value *> w(NV);
          for (int v = 0; v < NV; ++v) {
            Value *wIdx = b.CreateAdd(b.CreateMul(k, c64(N / 8)), b.CreateUDiv(ns[v], c64(8)));
            Value *words = load(vi(i32, W / 8), gep(i32, P[0], wIdx), 1);
            w[v] = colWeights(unpackCols(words, W, true), cg[v], W);
          }
          body(k, w);
        }, "k");
      }, "g");
      return;
    }
    // GPTQ: qweight [K/8, N]: the word of channel n at row kw holds k = 8kw .. 8kw+7.
    auto wordRow = [&](Value *kw, std::vector<Value *> &words) {
      for (int v = 0; v < NV; ++v)
        words[v] = load(vi(i32, W), gep(i32, P[0], b.CreateAdd(b.CreateMul(kw, c64(N)), ns[v])), 1);
    };
    auto codesAt = [&](Value *words, int j) {
      return b.CreateAnd(b.CreateLShr(words, splat(W, c32(4 * j))), splat(W, c32(15)));
    };
    if (!s_.gIdx && G % 8 == 0) {
      auto groupRange = [&](Value *g, Value *kwBegin, Value *kwEnd) {
        std::vector<ColGroup> cg;
        for (int v = 0; v < NV; ++v)
          cg.push_back(colGroup(g, ns[v], W));
        loop(kwBegin, kwEnd, 1, [&](Value *kw) {
          std::vector<Value *> words(NV);
          wordRow(kw, words);
          for (int j = 0; j < 8; ++j) {
            std::vector<Value *> w(NV);
            for (int v = 0; v < NV; ++v)
              w[v] = colWeights(codesAt(words[v], j), cg[v], W);
            body(b.CreateAdd(b.CreateMul(kw, c64(8)), c64(j)), w);
          }
        }, "kw");
      };
      loop(c64(0), c64(K / G), 1, [&](Value *g) {
        groupRange(g, b.CreateMul(g, c64(G / 8)), b.CreateMul(b.CreateAdd(g, c64(1)), c64(G / 8)));
      }, "g");
      if (K % G)
        groupRange(c64(K / G), c64(K / G * G / 8), c64(K / 8));
      return;
    }
    // Generic: the group of every k (g_idx, or groups not aligned to the 8 codes of a word).
    loop(c64(0), c64(K / 8), 1, [&](Value *kw) {
      std::vector<Value *> words(NV);
      wordRow(kw, words);
      for (int j = 0; j < 8; ++j) {
        Value *k = b.CreateAdd(b.CreateMul(kw, c64(8)), c64(j));
        Value *g = s_.gIdx ? b.CreateSExt(load(i32, gep(i32, P[3], k), 1), i64)
                           : b.CreateUDiv(k, c64(G));
        std::vector<Value *> w(NV);
        for (int v = 0; v < NV; ++v)
          w[v] = colWeights(codesAt(words[v], j), colGroup(g, ns[v], W), W);
        body(k, w);
      }
    }, "kw");
  }

  /// gemv tile: rows [m0, m0+MR) x channels n0 .. n0 + NV*W.
  void colsGemvTile(Value *m0, int MR, Value *n0, int NV, int W) {
    std::vector<std::vector<AllocaInst *>> acc(MR, std::vector<AllocaInst *>(NV));
    for (int i = 0; i < MR; ++i)
      for (int v = 0; v < NV; ++v) {
        acc[i][v] = slot(vf(W), "acc");
        store(Constant::getNullValue(vf(W)), acc[i][v], 4);
      }
    std::vector<Value *> xRow(MR);
    for (int i = 0; i < MR; ++i)
      xRow[i] = gep(f32, X, b.CreateMul(b.CreateAdd(m0, c64(i)), c64(s_.k)));
    colsK(n0, NV, W, [&](Value *k, std::vector<Value *> &w) {
      for (int i = 0; i < MR; ++i) {
        Value *xb = splat(W, load(f32, gep(f32, xRow[i], k), 4));
        for (int v = 0; v < NV; ++v)
          store(fma(xb, w[v], load(vf(W), acc[i][v], 4)), acc[i][v], 4);
      }
    });
    for (int i = 0; i < MR; ++i)
      for (int v = 0; v < NV; ++v) {
        Value *yi = b.CreateAdd(b.CreateMul(b.CreateAdd(m0, c64(i)), c64(s_.n)),
                                b.CreateAdd(n0, c64(int64_t(v) * W)));
        store(load(vf(W), acc[i][v], 4), gep(f32, Y, yi), 4);
      }
  }

  /// gemm tile on the slab (scratch[k * W + l] = W[n0 + l, k]).
  void colsSlabTile(Value *m0, int MR, Value *n0, int W) {
    std::vector<AllocaInst *> acc(MR);
    for (int i = 0; i < MR; ++i) {
      acc[i] = slot(vf(W), "acc");
      store(Constant::getNullValue(vf(W)), acc[i], 4);
    }
    std::vector<Value *> xRow(MR);
    for (int i = 0; i < MR; ++i)
      xRow[i] = gep(f32, X, b.CreateMul(b.CreateAdd(m0, c64(i)), c64(s_.k)));
    loop(c64(0), c64(s_.k), 1, [&](Value *k) {
      Value *w = load(vf(W), gep(f32, Scratch, b.CreateMul(k, c64(W))), 4);
      for (int i = 0; i < MR; ++i) {
        Value *xb = splat(W, load(f32, gep(f32, xRow[i], k), 4));
        store(fma(xb, w, load(vf(W), acc[i], 4)), acc[i], 4);
      }
    }, "k");
    for (int i = 0; i < MR; ++i) {
      Value *yi = b.CreateAdd(b.CreateMul(b.CreateAdd(m0, c64(i)), c64(s_.n)), n0);
      store(load(vf(W), acc[i], 4), gep(f32, Y, yi), 4);
    }
  }

  void emitColsN() {
    const int W = std::max(VL, 8);
    if (s_.mclass == MClass::Gemv) {
      auto nTile = [&](Value *n0, int NV, int w) {
        mTiles(c64(0), Mrows, [&](Value *m0, int MR) { colsGemvTile(m0, MR, n0, NV, w); });
      };
      Value *n = loop(NB, b.CreateSub(NE, c64(kColsNV * W - 1)), kColsNV * W,
                      [&](Value *n0) { nTile(n0, kColsNV, W); }, "n4");
      n = loop(n, b.CreateSub(NE, c64(W - 1)), W, [&](Value *n0) { nTile(n0, 1, W); }, "n1");
      if (W > 8)
        loop(n, NE, 8, [&](Value *n0) { nTile(n0, 1, 8); }, "n8");
      return;
    }
    loop(c64(0), Mrows, kGemmMB, [&](Value *mb) {
      Value *mbEnd = b.CreateAdd(mb, c64(kGemmMB));
      Value *mEnd = b.CreateSelect(b.CreateICmpSLT(mbEnd, Mrows), mbEnd, Mrows);
      auto nTile = [&](Value *n0, int w) {
        colsK(n0, 1, w, [&](Value *k, std::vector<Value *> &wv) {
          store(wv[0], gep(f32, Scratch, b.CreateMul(k, c64(w))), 4);
        });
        mTiles(mb, mEnd, [&](Value *m0, int MR) { colsSlabTile(m0, MR, n0, w); });
      };
      Value *n = loop(NB, b.CreateSub(NE, c64(W - 1)), W, [&](Value *n0) { nTile(n0, W); }, "n1");
      if (W > 8)
        loop(n, NE, 8, [&](Value *n0) { nTile(n0, 8); }, "n8");
    }, "mb");
  }

  const KernelSpec &s_;
  LLVMContext &C;
  Module &M_;
  IRBuilder<> b;
  const int VL;
  Function *F = nullptr;
  Type *f32, *f16, *i8, *i16, *i32, *i64;
  PointerType *ptr;
  Value *X = nullptr, *Mrows = nullptr, *Y = nullptr, *NB = nullptr, *NE = nullptr,
        *Scratch = nullptr;
  Value *P[4] = {nullptr, nullptr, nullptr, nullptr};
};

Function *Emitter::emit() {
  FunctionType *ft = FunctionType::get(Type::getVoidTy(C), {ptr, i64, ptr, ptr, i64, i64, ptr}, false);
  F = Function::Create(ft, Function::ExternalLinkage, s_.symbol(), M_);
  const char *names[] = {"x", "M", "parts", "y", "n_begin", "n_end", "scratch"};
  for (unsigned i = 0; i < 7; ++i)
    F->getArg(i)->setName(names[i]);
  for (unsigned i : {0u, 2u, 3u, 6u})
    F->addParamAttr(i, Attribute::NoAlias);
  F->addParamAttr(0, Attribute::ReadOnly);
  F->addParamAttr(2, Attribute::ReadOnly);
  F->addFnAttr(Attribute::NoUnwind);
  F->addFnAttr("target-cpu", hostCpuName());
  {
    std::string feats;
    for (const auto &f : llvm::sys::getHostCPUFeatures())
      feats += (feats.empty() ? "" : ",") + std::string(f.second ? "+" : "-") + f.first().str();
    F->addFnAttr("target-features", feats);
  }
  if (VL >= 16) { // use zmm registers even where the CPU model prefers 256-bit vectors
    F->addFnAttr("prefer-vector-width", "512");
    F->addFnAttr("min-legal-vector-width", "512");
  }
  BasicBlock *entry = BasicBlock::Create(C, "entry", F);
  BasicBlock *body = BasicBlock::Create(C, "start", F);
  b.SetInsertPoint(entry);
  b.CreateBr(body);
  b.SetInsertPoint(body);
  X = F->getArg(0);
  Mrows = F->getArg(1);
  Value *parts = F->getArg(2);
  Y = F->getArg(3);
  NB = F->getArg(4);
  NE = F->getArg(5);
  Scratch = F->getArg(6);
  std::vector<std::string> slots = s_.partSlots();
  for (unsigned i = 0; i < slots.size() && i < 4; ++i)
    if (!slots[i].empty())
      P[i] = load(ptr, gep(ptr, parts, c64(i)), 8);
  if (s_.family() == Family::RowsK)
    emitRowsK();
  else
    emitColsN();
  b.CreateRetVoid();
  return F;
}

} // namespace

std::unique_ptr<llvm::Module> emitKernelModule(const KernelSpec &spec, llvm::LLVMContext &ctx) {
  auto m = std::make_unique<llvm::Module>(spec.symbol(), ctx);
  m->setTargetTriple(llvm::sys::getProcessTriple());
  Emitter e(spec, ctx, *m);
  e.emit();
  return m;
}

} // namespace qlc::codegen
