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
// Int8 activations (KernelSpec::act, GGUF Q8_0/Q4_0/Q4_K/Q6_K): x is quantized per 32-block into
//   `scratch` inside the kernel, weights become 8-bit codes, vpdpbusd does the products (see the
//   section "RowsK with int8 activations" below and codegen/README.md).
//
// FP (f32 kernels): unpacking uses the reference's exact operation order (fmul / fsub without contraction), so
// the f32 weights equal the schemes' reference dequantization bit for bit; products are
// accumulated with llvm.fmuladd (an FMA where the host has one).
#include "codegen/kernel_emitter.h"

#include <functional>

#include "llvm/IR/IRBuilder.h"
#include "llvm/IR/Intrinsics.h"
#include "llvm/IR/IntrinsicsX86.h"
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
    Value *dlVec = nullptr, *mlVec = nullptr; // Q4_K: all 8 d*sc / dmin*m
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
    if (!t.dlVec) {
      // All 8 (sc, m) pairs at once from the 12 scale bytes b (lanes j < 4 / j >= 4):
      //   sc = b[j] & 63          | (b[j+4] & 15) | (b[j-4] >> 6) << 4
      //   m  = b[j+4] & 63        | (b[j+4] >> 4) | (b[j] >> 6) << 4
      Value *v = load(vi(i8, 16), gepB(t.base, c64(4)), 1); // bytes 4..19 (in the block)
      Value *A = b.CreateShuffleVector(v, {0, 1, 2, 3, 8, 9, 10, 11});
      Value *B = b.CreateShuffleVector(v, {4, 5, 6, 7, 8, 9, 10, 11});
      Value *Cv = b.CreateShuffleVector(v, {0, 1, 2, 3, 0, 1, 2, 3});
      Value *D = b.CreateShuffleVector(v, {4, 5, 6, 7, 4, 5, 6, 7});
      auto sp = [&](int x) { return splatI8(8, x); };
      Value *hiC = b.CreateShl(b.CreateLShr(Cv, sp(6)), sp(4));
      Value *hiD = b.CreateShl(b.CreateLShr(D, sp(6)), sp(4));
      Value *low = ConstantVector::get({b.getTrue(), b.getTrue(), b.getTrue(), b.getTrue(),
                                        b.getFalse(), b.getFalse(), b.getFalse(), b.getFalse()});
      Value *sc = b.CreateSelect(low, b.CreateAnd(A, sp(63)), b.CreateOr(b.CreateAnd(A, sp(15)), hiC));
      Value *m = b.CreateSelect(low, b.CreateAnd(B, sp(63)), b.CreateOr(b.CreateLShr(B, sp(4)), hiD));
      t.dlVec = b.CreateFMul(splat(8, t.d), b.CreateUIToFP(sc, vf(8)));
      t.mlVec = b.CreateFMul(splat(8, t.dmin), b.CreateUIToFP(m, vf(8)));
    }
    t.dl[j] = b.CreateExtractElement(t.dlVec, uint64_t(j));
    t.ml[j] = b.CreateExtractElement(t.mlVec, uint64_t(j));
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
      if (s_.n % kRowsNR) // chunks start at multiples of kRowsNR: only N's tail is ragged
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
      if (s_.n % kRowsNR) // chunks start at multiples of kRowsNR: only N's tail is ragged
        loop(n, NE, 1, [&](Value *n0) { nTile(n0, 1); }, "n1");
    }, "mb");
  }

  // ---- RowsK with int8 activations (GGUF) ----------------------------------------------------
  // Per call and m-block of int8RowsPerBlock() rows, x is quantized into `scratch` per 32-element
  // block b: dx_b = max|x| / 127, xq = roundeven(x / dx_b) in [-127, 127]. Per block the scratch
  // also holds a 16-byte record: dx_b, the bias -zp * sum(xq) (Q6_K: of elements 0..15 and of
  // 16..31, whose weight scales differ; the weights' zero point folded into the dot product's
  // start value) and sx_b = dx_b * sum(xq) (Q4_K's min term).
  // The weights of two consecutive 32-blocks become 64 unsigned 8-bit codes c (Q8_0: q + 128,
  // Q4_0 / Q4_K: nibble, Q6_K: 6-bit code) with w = sw * (c - zp) [- ml]; one 512-bit vpdpbusd
  // (bias, c, xq) gives sum (c - zp) * xq exactly, int32 lanes 0..7 for the first block and
  // 8..15 for the second; then one conversion and one FMA with sw * dx per 64 weights and output.
  int64_t nBlk() const { return s_.k / kActBlock; }
  int zeroPoint8() const {
    switch (s_.layout) {
    case Layout::GgufQ8_0: return 128;
    case Layout::GgufQ4_0: return 8;
    case Layout::GgufQ6_K: return 32;
    default: return 0;
    }
  }
  int64_t qRows() const { return s_.int8RowsPerBlock(); }
  Value *xqAt(Value *i, Value *blk) {
    return gepB(Scratch, b.CreateAdd(b.CreateMul(i, c64(s_.k)), b.CreateMul(blk, c64(kActBlock))));
  }
  /// Per-block record (16 bytes) of scratch row i, block blk: which = 0: dx (f32), 1: the bias
  /// (i32; Q6_K: of elements 0..15, with that of 16..31 at +4), 2: sx (f32).
  Value *blockDataAt(int which, Value *i, Value *blk) {
    const int64_t off[3] = {0, 4, 12};
    Value *idx = b.CreateAdd(b.CreateMul(i, c64(nBlk())), blk);
    return gepB(Scratch, b.CreateAdd(c64(qRows() * s_.k + off[which]), b.CreateMul(idx, c64(16))));
  }
  /// sx of the 8 blocks from blk0 as <8 x float>.
  Value *sx8(Value *i, Value *blk0) {
    Value *v = UndefValue::get(vf(8));
    for (int j = 0; j < 8; ++j)
      v = b.CreateInsertElement(v, load(f32, blockDataAt(2, i, b.CreateAdd(blk0, c64(j))), 4),
                                uint64_t(j));
    return v;
  }
  bool splitBias() const { return s_.layout == Layout::GgufQ6_K; }

  /// Quantizes rows [mb, mEnd) of x into scratch rows [0, mEnd - mb).
  void quantizeRows(Value *mb, Value *mEnd) {
    const int B = int(kActBlock);
    loop(mb, mEnd, 1, [&](Value *m) {
      Value *i = b.CreateSub(m, mb);
      Value *xr = gep(f32, X, b.CreateMul(m, c64(s_.k)));
      loop(c64(0), c64(nBlk()), 1, [&](Value *blk) {
        Value *v = load(vf(B), gep(f32, xr, b.CreateMul(blk, c64(B))), 4);
        // max |x| through the bit patterns (|x| orders like its bits as unsigned).
        Value *bits = b.CreateAnd(b.CreateBitCast(v, vi(i32, B)), splat(B, c32(0x7fffffff)));
        Value *amax = b.CreateBitCast(b.CreateIntMaxReduce(bits, false), f32);
        Value *dx = b.CreateFDiv(amax, ConstantFP::get(f32, 127.0));
        Value *div = b.CreateSelect(b.CreateFCmpOGT(amax, ConstantFP::get(f32, 0.0)), dx,
                                    ConstantFP::get(f32, 1.0));
        Value *r = b.CreateUnaryIntrinsic(Intrinsic::roundeven, b.CreateFDiv(v, splat(B, div)));
        Value *q = b.CreateFPToSI(r, vi(i32, B));
        std::vector<int> lo, hi;
        for (int l = 0; l < B / 2; ++l) {
          lo.push_back(l);
          hi.push_back(l + B / 2);
        }
        Value *sLo = b.CreateAddReduce(b.CreateShuffleVector(q, lo));
        Value *sHi = b.CreateAddReduce(b.CreateShuffleVector(q, hi));
        Value *isum = b.CreateAdd(sLo, sHi);
        store(b.CreateTrunc(q, vi(i8, B)), xqAt(i, blk), 1);
        store(dx, blockDataAt(0, i, blk), 4);
        Value *zp = c32(-zeroPoint8());
        Value *biasAt = blockDataAt(1, i, blk);
        store(b.CreateMul(splitBias() ? sLo : isum, zp), biasAt, 4);
        store(b.CreateMul(splitBias() ? sHi : c32(0), zp), gepB(biasAt, c64(4)), 4);
        store(b.CreateFMul(dx, b.CreateSIToFP(isum, f32)), blockDataAt(2, i, blk), 4);
      }, "qb");
    }, "qm");
  }

  Value *splatI8(int w, int v) { return splat(w, b.getInt8(uint8_t(v))); }
  Value *concat(Value *a, Value *c) {
    int w = int(cast<FixedVectorType>(a->getType())->getNumElements());
    std::vector<int> idx;
    for (int l = 0; l < 2 * w; ++l)
      idx.push_back(l);
    return b.CreateShuffleVector(a, c, idx);
  }
  /// [a x 8, c x 8] as <16 x float>.
  Value *pairScale(Value *a, Value *c) { return concat(splat(8, a), splat(8, c)); }

  /// 64 codes and their 16 per-lane scales: two consecutive 32-blocks (Q8_0 / Q4_0: blocks t0, t1,
  /// t1 null = the missing second block of an odd count, zero codes), or the 64 elements of
  /// sub-blocks 2p, 2p+1 of the super-block t0 (Q4_K / Q6_K).
  std::pair<Value *, Value *> int8Pair(Unit &t0, Unit *t1, int p) {
    Value *zero32 = Constant::getNullValue(vi(i8, 32));
    switch (s_.layout) {
    case Layout::GgufQ8_0: {
      Value *a = load(vi(i8, 32), gepB(t0.base, c64(2)), 1);
      Value *c = t1 ? load(vi(i8, 32), gepB(t1->base, c64(2)), 1) : zero32;
      Value *q = b.CreateXor(concat(a, c), splatI8(64, 0x80));
      if (!t1) // the missing block's codes must be 0, not 0 ^ 0x80
        q = concat(b.CreateXor(a, splatI8(32, 0x80)), zero32);
      return {q, pairScale(t0.d, t1 ? t1->d : ConstantFP::get(f32, 0.0))};
    }
    case Layout::GgufQ4_0: {
      Value *a = load(vi(i8, 16), gepB(t0.base, c64(2)), 1);
      Value *c = t1 ? load(vi(i8, 16), gepB(t1->base, c64(2)), 1)
                    : Constant::getNullValue(vi(i8, 16));
      Value *v = concat(a, c);
      Value *lo = b.CreateAnd(v, splatI8(32, 15)), *hi = b.CreateLShr(v, splatI8(32, 4));
      std::vector<int> idx; // [lo(t0), hi(t0), lo(t1), hi(t1)]
      for (int l = 0; l < 16; ++l) idx.push_back(l);
      for (int l = 0; l < 16; ++l) idx.push_back(32 + l);
      for (int l = 0; l < 16; ++l) idx.push_back(16 + l);
      for (int l = 0; l < 16; ++l) idx.push_back(48 + l);
      return {b.CreateShuffleVector(lo, hi, idx),
              pairScale(t0.d, t1 ? t1->d : ConstantFP::get(f32, 0.0))};
    }
    case Layout::GgufQ4_K: {
      Value *v = load(vi(i8, 32), gepB(t0.base, c64(16 + 32 * p)), 1);
      Value *q = concat(b.CreateAnd(v, splatI8(32, 15)), b.CreateLShr(v, splatI8(32, 4)));
      q4kScales(t0, 2 * p);
      q4kScales(t0, 2 * p + 1);
      return {q, pairScale(t0.dl[2 * p], t0.dl[2 * p + 1])};
    }
    case Layout::GgufQ6_K: {
      int h = p / 2, q0 = 2 * (p % 2);
      Value *ql = load(vi(i8, 64), gepB(t0.base, c64(64 * h)), 1);
      if (p % 2)
        ql = b.CreateLShr(ql, splatI8(64, 4));
      ql = b.CreateAnd(ql, splatI8(64, 15));
      Value *qh = load(vi(i8, 32), gepB(t0.base, c64(128 + 32 * h)), 1);
      Value *h0 = q0 ? b.CreateLShr(qh, splatI8(32, 2 * q0)) : qh;
      Value *h1 = b.CreateLShr(qh, splatI8(32, 2 * q0 + 2));
      Value *hv = concat(b.CreateAnd(h0, splatI8(32, 3)), b.CreateAnd(h1, splatI8(32, 3)));
      Value *q = b.CreateOr(ql, b.CreateShl(hv, splatI8(64, 4)));
      Value *sc = b.CreateSIToFP(load(vi(i8, 4), gepB(t0.base, c64(192 + 4 * p)), 1), vf(4));
      Value *s4 = b.CreateFMul(sc, splat(4, t0.d));
      std::vector<int> idx;
      for (int l = 0; l < 16; ++l)
        idx.push_back(l / 4);
      return {q, b.CreateShuffleVector(s4, idx)};
    }
    default:
      return {nullptr, nullptr};
    }
  }

  Value *dot16(Value *acc, Value *codes, Value *xq) {
    Function *f = Intrinsic::getDeclaration(&M_, Intrinsic::x86_avx512_vpdpbusd_512);
    return b.CreateCall(f, {acc, b.CreateBitCast(codes, vi(i32, 16)), b.CreateBitCast(xq, vi(i32, 16))});
  }

  /// acc[i][r] += (sum over the pair of 32-blocks at blk of (c - zp) * xq) * sw * dx.
  void int8PairStep(std::vector<std::vector<AllocaInst *>> &acc, const std::vector<Value *> &xi,
                    Value *blk, std::vector<std::pair<Value *, Value *>> &w, bool single) {
    const bool zp = zeroPoint8() != 0;
    for (size_t i = 0; i < acc.size(); ++i) {
      // Lanes 0..7: block blk, 8..15: blk + 1 (absent: zero, the last block of an odd count).
      Value *xq, *dx, *bias = Constant::getNullValue(vi(i32, 16));
      Value *blk1 = b.CreateAdd(blk, c64(1));
      if (single)
        xq = concat(load(vi(i8, 32), xqAt(xi[i], blk), 1), Constant::getNullValue(vi(i8, 32)));
      else
        xq = load(vi(i8, 64), xqAt(xi[i], blk), 1);
      dx = pairScale(load(f32, blockDataAt(0, xi[i], blk), 4),
                     single ? ConstantFP::get(f32, 0.0) : load(f32, blockDataAt(0, xi[i], blk1), 4));
      if (zp)
        for (int bb = 0; bb < (single ? 1 : 2); ++bb) {
          Value *at = blockDataAt(1, xi[i], bb ? blk1 : blk);
          bias = b.CreateInsertElement(bias, load(i32, at, 4), uint64_t(8 * bb));
          if (splitBias())
            bias = b.CreateInsertElement(bias, load(i32, gepB(at, c64(4)), 4), uint64_t(8 * bb + 4));
        }
      for (size_t r = 0; r < w.size(); ++r) {
        Value *d = b.CreateSIToFP(dot16(bias, w[r].first, xq), vf(16));
        store(fma(d, b.CreateFMul(w[r].second, dx), load(vf(16), acc[i][r], 4)), acc[i][r], 4);
      }
    }
  }

  void int8Store(std::vector<std::vector<AllocaInst *>> &acc,
                 std::vector<std::vector<AllocaInst *>> &macc, Value *m0, int MR, Value *n0, int R) {
    const bool mins = s_.layout == Layout::GgufQ4_K;
    for (int i = 0; i < MR; ++i)
      for (int r = 0; r < R; ++r) {
        Value *v = hsum(load(vf(16), acc[i][r], 4));
        if (mins)
          v = b.CreateFSub(v, hsum(load(vf(8), macc[i][r], 4)));
        Value *yi = b.CreateAdd(b.CreateMul(b.CreateAdd(m0, c64(i)), c64(s_.n)),
                                b.CreateAdd(n0, c64(r)));
        store(v, gep(f32, Y, yi), 4);
      }
  }

  /// Rows [m0, m0+MR) (scratch rows m0 - mb ...) x channels [n0, n0+R).
  void int8Tile(Value *mb, Value *m0, int MR, Value *n0, int R) {
    const bool kq = s_.layout == Layout::GgufQ4_K || s_.layout == Layout::GgufQ6_K;
    const bool mins = s_.layout == Layout::GgufQ4_K;
    std::vector<std::vector<AllocaInst *>> acc(MR, std::vector<AllocaInst *>(R)), macc = acc;
    for (int i = 0; i < MR; ++i)
      for (int r = 0; r < R; ++r) {
        acc[i][r] = slot(vf(16), "acc");
        store(Constant::getNullValue(vf(16)), acc[i][r], 4);
        if (mins) {
          macc[i][r] = slot(vf(8), "macc");
          store(Constant::getNullValue(vf(8)), macc[i][r], 4);
        }
      }
    std::vector<Value *> rows(R), rowB(R), xi(MR);
    for (int r = 0; r < R; ++r) {
      rows[r] = b.CreateAdd(n0, c64(r));
      rowB[r] = rowBase(rows[r]);
    }
    for (int i = 0; i < MR; ++i)
      xi[i] = b.CreateAdd(b.CreateSub(m0, mb), c64(i));
    auto pairStep = [&](Value *blk, std::vector<std::pair<Value *, Value *>> &w, bool single) {
      int8PairStep(acc, xi, blk, w, single);
    };
    if (kq) {
      loop(c64(0), c64(nUnits()), 1, [&](Value *u) {
        std::vector<Unit> units;
        for (int r = 0; r < R; ++r)
          units.push_back(setupUnit(rowB[r], rows[r], u));
        Value *blk0 = b.CreateMul(u, c64(8));
        for (int p = 0; p < 4; ++p) {
          std::vector<std::pair<Value *, Value *>> w;
          for (int r = 0; r < R; ++r)
            w.push_back(int8Pair(units[r], nullptr, p));
          pairStep(b.CreateAdd(blk0, c64(2 * p)), w, false);
        }
        if (mins) { // sum_j dmin m_j * sx_j over the 8 sub-blocks, as 8 lanes
          std::vector<Value *> mlv(R);
          for (int r = 0; r < R; ++r) {
            q4kScales(units[r], 0);
            mlv[r] = units[r].mlVec;
          }
          for (int i = 0; i < MR; ++i) {
            Value *sx = sx8(xi[i], blk0);
            for (int r = 0; r < R; ++r)
              store(fma(mlv[r], sx, load(vf(8), macc[i][r], 4)), macc[i][r], 4);
          }
        }
      }, "u");
    } else {
      loop(c64(0), c64(nBlk() / 2), 1, [&](Value *u2) {
        Value *blk = b.CreateMul(u2, c64(2));
        std::vector<Unit> u0, u1;
        for (int r = 0; r < R; ++r) {
          u0.push_back(setupUnit(rowB[r], rows[r], blk));
          u1.push_back(setupUnit(rowB[r], rows[r], b.CreateAdd(blk, c64(1))));
        }
        std::vector<std::pair<Value *, Value *>> w;
        for (int r = 0; r < R; ++r)
          w.push_back(int8Pair(u0[r], &u1[r], 0));
        pairStep(blk, w, false);
      }, "u");
      if (nBlk() % 2) {
        Value *blk = c64(nBlk() - 1);
        std::vector<Unit> u0;
        for (int r = 0; r < R; ++r)
          u0.push_back(setupUnit(rowB[r], rows[r], blk));
        std::vector<std::pair<Value *, Value *>> w;
        for (int r = 0; r < R; ++r)
          w.push_back(int8Pair(u0[r], nullptr, 0));
        pairStep(blk, w, true);
      }
    }
    int8Store(acc, macc, m0, MR, n0, R);
  }

  // gemm: the n-tile's codes and scales, unpacked once per m-block into a panel in scratch
  // (after the quantized x block) and reused by every m-tile: per pair of 32-blocks and row r,
  // 64 codes then 16 f32 scales (128 bytes); Q4_K also 8 f32 dmin * m per super-block and row.
  int64_t nPairs() const { return (nBlk() + 1) / 2; }
  int64_t panelOffset() const {
    return s_.int8RowsPerBlock() * (s_.k + 16 * nBlk());
  }
  Value *panelPair(Value *pi, int r, int R) {
    return gepB(Scratch, b.CreateAdd(c64(panelOffset()),
                                     b.CreateMul(b.CreateAdd(b.CreateMul(pi, c64(R)), c64(r)), c64(128))));
  }
  Value *panelMins(Value *u, int r, int R) {
    int64_t off = panelOffset() + nPairs() * kRowsNR * 128;
    return gepB(Scratch, b.CreateAdd(c64(off), b.CreateMul(b.CreateAdd(b.CreateMul(u, c64(R)), c64(r)), c64(32))));
  }
  void fillPanel(Value *n0, int R) {
    const bool kq = s_.layout == Layout::GgufQ4_K || s_.layout == Layout::GgufQ6_K;
    std::vector<Value *> rows(R), rowB(R);
    for (int r = 0; r < R; ++r) {
      rows[r] = b.CreateAdd(n0, c64(r));
      rowB[r] = rowBase(rows[r]);
    }
    auto put = [&](Value *pi, int r, std::pair<Value *, Value *> w) {
      Value *at = panelPair(pi, r, R);
      store(w.first, at, 1);
      store(w.second, gepB(at, c64(64)), 4);
    };
    if (kq) {
      loop(c64(0), c64(nUnits()), 1, [&](Value *u) {
        for (int r = 0; r < R; ++r) {
          Unit t = setupUnit(rowB[r], rows[r], u);
          for (int p = 0; p < 4; ++p)
            put(b.CreateAdd(b.CreateMul(u, c64(4)), c64(p)), r, int8Pair(t, nullptr, p));
          if (s_.layout == Layout::GgufQ4_K) {
            q4kScales(t, 0);
            store(t.mlVec, panelMins(u, r, R), 4);
          }
        }
      }, "pf");
      return;
    }
    loop(c64(0), c64(nBlk() / 2), 1, [&](Value *u2) {
      Value *blk = b.CreateMul(u2, c64(2));
      for (int r = 0; r < R; ++r) {
        Unit t0 = setupUnit(rowB[r], rows[r], blk);
        Unit t1 = setupUnit(rowB[r], rows[r], b.CreateAdd(blk, c64(1)));
        put(u2, r, int8Pair(t0, &t1, 0));
      }
    }, "pf");
    if (nBlk() % 2)
      for (int r = 0; r < R; ++r) {
        Unit t0 = setupUnit(rowB[r], rows[r], c64(nBlk() - 1));
        put(c64(nBlk() / 2), r, int8Pair(t0, nullptr, 0));
      }
  }

  /// gemm micro-kernel on the panel: rows [m0, m0+MR) x channels [n0, n0+R).
  void int8PanelTile(Value *mb, Value *m0, int MR, Value *n0, int R) {
    const bool mins = s_.layout == Layout::GgufQ4_K;
    std::vector<std::vector<AllocaInst *>> acc(MR, std::vector<AllocaInst *>(R)), macc = acc;
    for (int i = 0; i < MR; ++i)
      for (int r = 0; r < R; ++r) {
        acc[i][r] = slot(vf(16), "acc");
        store(Constant::getNullValue(vf(16)), acc[i][r], 4);
        if (mins) {
          macc[i][r] = slot(vf(8), "macc");
          store(Constant::getNullValue(vf(8)), macc[i][r], 4);
        }
      }
    std::vector<Value *> xi(MR);
    for (int i = 0; i < MR; ++i)
      xi[i] = b.CreateAdd(b.CreateSub(m0, mb), c64(i));
    auto fromPanel = [&](Value *pi) {
      std::vector<std::pair<Value *, Value *>> w;
      for (int r = 0; r < R; ++r) {
        Value *at = panelPair(pi, r, R);
        w.push_back({load(vi(i8, 64), at, 1), load(vf(16), gepB(at, c64(64)), 4)});
      }
      return w;
    };
    loop(c64(0), c64(nBlk() / 2), 1, [&](Value *pi) {
      auto w = fromPanel(pi);
      int8PairStep(acc, xi, b.CreateMul(pi, c64(2)), w, false);
    }, "p");
    if (nBlk() % 2) {
      auto w = fromPanel(c64(nBlk() / 2));
      int8PairStep(acc, xi, c64(nBlk() - 1), w, true);
    }
    if (mins)
      loop(c64(0), c64(nUnits()), 1, [&](Value *u) {
        std::vector<Value *> ml(R);
        for (int r = 0; r < R; ++r)
          ml[r] = load(vf(8), panelMins(u, r, R), 4);
        for (int i = 0; i < MR; ++i) {
          Value *sx = sx8(xi[i], b.CreateMul(u, c64(8)));
          for (int r = 0; r < R; ++r)
            store(fma(ml[r], sx, load(vf(8), macc[i][r], 4)), macc[i][r], 4);
        }
      }, "mu");
    int8Store(acc, macc, m0, MR, n0, R);
  }

  // gemm, wide tiles of kWideN = 32 output channels (llama.cpp's repacked layout, generated per
  // specialisation): per 32-block b the panel holds the 32 channels' codes as 8 x 32 int32 words
  // (word (k4, n) = codes 4k4 .. 4k4+3 of channel n), then their scales (per 16-element half for
  // Q6_K) and Q4_K's dmin * m, so one vpdpbusd multiplies 4 codes of 16 channels with 4
  // activations broadcast from x, accumulating a whole block in int32 before one conversion and
  // FMA per 16 channels: lanes are channels, no horizontal sums.
  int nHalves() const { return s_.layout == Layout::GgufQ6_K ? 2 : 1; }
  int64_t wideBlockBytes() const {
    return 1024 + 128 * nHalves() + (s_.layout == Layout::GgufQ4_K ? 128 : 0);
  }
  Value *widePanel(Value *blk, int64_t off) {
    return gepB(Scratch, b.CreateAdd(c64(panelOffset() + off), b.CreateMul(blk, c64(wideBlockBytes()))));
  }
  void fillWidePanel(Value *n0) {
    const bool kq = s_.layout == Layout::GgufQ4_K || s_.layout == Layout::GgufQ6_K;
    loop(c64(0), c64(kWideN), 1, [&](Value *nn) {
      Value *row = b.CreateAdd(n0, nn);
      Value *rb = rowBase(row);
      Value *n4 = b.CreateMul(nn, c64(4));
      // codes / scales of blocks blk0 (lanes 0..7) and blk0 + 1 (8..15; absent if !second)
      auto put = [&](Value *blk0, std::pair<Value *, Value *> w, bool second) {
        Value *words = b.CreateBitCast(w.first, vi(i32, 16));
        for (int bb = 0; bb < (second ? 2 : 1); ++bb) {
          Value *blk = b.CreateAdd(blk0, c64(bb));
          for (int k4 = 0; k4 < 8; ++k4)
            store(b.CreateExtractElement(words, uint64_t(bb * 8 + k4)),
                  gepB(widePanel(blk, k4 * 128), n4), 4);
          for (int hh = 0; hh < nHalves(); ++hh)
            store(b.CreateExtractElement(w.second, uint64_t(bb * 8 + hh * 4)),
                  gepB(widePanel(blk, 1024 + hh * 128), n4), 4);
        }
      };
      if (kq) {
        loop(c64(0), c64(nUnits()), 1, [&](Value *u) {
          Unit t = setupUnit(rb, row, u);
          Value *blk0 = b.CreateMul(u, c64(8));
          for (int p = 0; p < 4; ++p)
            put(b.CreateAdd(blk0, c64(2 * p)), int8Pair(t, nullptr, p), true);
          if (s_.layout == Layout::GgufQ4_K)
            for (int j = 0; j < 8; ++j) {
              q4kScales(t, j);
              store(t.ml[j], gepB(widePanel(b.CreateAdd(blk0, c64(j)), 1024 + 128), n4), 4);
            }
        }, "wf");
        return;
      }
      loop(c64(0), c64(nBlk() / 2), 1, [&](Value *u2) {
        Value *blk = b.CreateMul(u2, c64(2));
        Unit t0 = setupUnit(rb, row, blk);
        Unit t1 = setupUnit(rb, row, b.CreateAdd(blk, c64(1)));
        put(blk, int8Pair(t0, &t1, 0), true);
      }, "wf");
      if (nBlk() % 2) {
        Unit t0 = setupUnit(rb, row, c64(nBlk() - 1));
        put(c64(nBlk() - 1), int8Pair(t0, nullptr, 0), false);
      }
    }, "wn");
  }

  /// Rows [m0, m0+MR) x channels [n0, n0 + kWideN) on the wide panel.
  void wideTile(Value *mb, Value *m0, int MR, Value *n0) {
    const int NV = int(kWideN / 16);
    const bool mins = s_.layout == Layout::GgufQ4_K;
    const bool zp = zeroPoint8() != 0;
    std::vector<std::vector<AllocaInst *>> acc(MR, std::vector<AllocaInst *>(NV)), macc = acc;
    for (int i = 0; i < MR; ++i)
      for (int v = 0; v < NV; ++v) {
        acc[i][v] = slot(vf(16), "acc");
        store(Constant::getNullValue(vf(16)), acc[i][v], 4);
        if (mins) {
          macc[i][v] = slot(vf(16), "macc");
          store(Constant::getNullValue(vf(16)), macc[i][v], 4);
        }
      }
    std::vector<Value *> xi(MR);
    for (int i = 0; i < MR; ++i)
      xi[i] = b.CreateAdd(b.CreateSub(m0, mb), c64(i));
    loop(c64(0), c64(nBlk()), 1, [&](Value *blk) {
      std::vector<Value *> dx(MR), xq(MR);
      for (int i = 0; i < MR; ++i) {
        dx[i] = splat(16, load(f32, blockDataAt(0, xi[i], blk), 4));
        xq[i] = xqAt(xi[i], blk);
      }
      const int k4PerHalf = 8 / nHalves();
      for (int hh = 0; hh < nHalves(); ++hh) {
        std::vector<std::vector<Value *>> ia(MR, std::vector<Value *>(NV));
        for (int i = 0; i < MR; ++i) {
          Value *bias = Constant::getNullValue(vi(i32, 16));
          if (zp)
            bias = splat(16, load(i32, gepB(blockDataAt(1, xi[i], blk), c64(4 * hh)), 4));
          for (int v = 0; v < NV; ++v)
            ia[i][v] = bias;
        }
        for (int k4 = hh * k4PerHalf; k4 < (hh + 1) * k4PerHalf; ++k4) {
          std::vector<Value *> w(NV);
          for (int v = 0; v < NV; ++v)
            w[v] = load(vi(i32, 16), widePanel(blk, k4 * 128 + v * 64), 4);
          for (int i = 0; i < MR; ++i) {
            Value *xb = splat(16, load(i32, gepB(xq[i], c64(4 * k4)), 1));
            for (int v = 0; v < NV; ++v) {
              Function *f = Intrinsic::getDeclaration(&M_, Intrinsic::x86_avx512_vpdpbusd_512);
              ia[i][v] = b.CreateCall(f, {ia[i][v], w[v], xb});
            }
          }
        }
        for (int v = 0; v < NV; ++v) {
          Value *sw = load(vf(16), widePanel(blk, 1024 + hh * 128 + v * 64), 4);
          for (int i = 0; i < MR; ++i)
            store(fma(b.CreateSIToFP(ia[i][v], vf(16)), b.CreateFMul(sw, dx[i]),
                      load(vf(16), acc[i][v], 4)), acc[i][v], 4);
        }
      }
      if (mins)
        for (int v = 0; v < NV; ++v) {
          Value *ml = load(vf(16), widePanel(blk, 1024 + 128 + v * 64), 4);
          for (int i = 0; i < MR; ++i) {
            Value *sx = splat(16, load(f32, blockDataAt(2, xi[i], blk), 4));
            store(fma(ml, sx, load(vf(16), macc[i][v], 4)), macc[i][v], 4);
          }
        }
    }, "wb");
    for (int i = 0; i < MR; ++i)
      for (int v = 0; v < NV; ++v) {
        Value *r = load(vf(16), acc[i][v], 4);
        if (mins)
          r = b.CreateFSub(r, load(vf(16), macc[i][v], 4));
        Value *yi = b.CreateAdd(b.CreateMul(b.CreateAdd(m0, c64(i)), c64(s_.n)),
                                b.CreateAdd(n0, c64(16 * v)));
        store(r, gep(f32, Y, yi), 4);
      }
  }

  void emitRowsKInt8() {
    const bool panel = s_.mclass == MClass::Gemm;
    loop(c64(0), Mrows, qRows(), [&](Value *mb) {
      Value *mbEnd = b.CreateAdd(mb, c64(qRows()));
      Value *mEnd = b.CreateSelect(b.CreateICmpSLT(mbEnd, Mrows), mbEnd, Mrows);
      quantizeRows(mb, mEnd);
      auto nTile = [&](Value *n0, int R) {
        if (panel) {
          fillPanel(n0, R);
          mTiles(mb, mEnd, [&](Value *m0, int MR) { int8PanelTile(mb, m0, MR, n0, R); });
          return;
        }
        mTiles(mb, mEnd, [&](Value *m0, int MR) { int8Tile(mb, m0, MR, n0, R); });
      };
      Value *n = NB;
      if (panel && s_.n >= kWideN)
        n = loop(NB, b.CreateSub(NE, c64(kWideN - 1)), kWideN, [&](Value *n0) {
          fillWidePanel(n0);
          mTiles(mb, mEnd, [&](Value *m0, int MR) { wideTile(mb, m0, MR, n0); });
        }, "nw");
      // Narrower tiles only for what N's tail needs (chunks start at multiples of the tile).
      // The K-quant gemv kernels take 2 rows a tile: half the code (compile time), the same
      // bytes per output.
      const int R = !panel && (s_.layout == Layout::GgufQ4_K || s_.layout == Layout::GgufQ6_K)
                        ? 2 : int(kRowsNR);
      if (!panel || s_.n % kWideN >= R)
        n = loop(n, b.CreateSub(NE, c64(R - 1)), R, [&](Value *n0) { nTile(n0, R); }, "n4");
      if (s_.n % R) // chunks start at multiples of kRowsNR: only N's tail is ragged
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
      // Chunks start at multiples of kColsNV * W (KernelSpec::threadAlign): the narrower tiles
      // are emitted only for what N's tail needs.
      Value *n = loop(NB, b.CreateSub(NE, c64(kColsNV * W - 1)), kColsNV * W,
                      [&](Value *n0) { nTile(n0, kColsNV, W); }, "n4");
      if (s_.n % (kColsNV * W) >= W)
        n = loop(n, b.CreateSub(NE, c64(W - 1)), W, [&](Value *n0) { nTile(n0, 1, W); }, "n1");
      if (W > 8 && s_.n % W)
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
  if (s_.act == Activations::Int8)
    emitRowsKInt8();
  else if (s_.family() == Family::RowsK)
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
