// IR generation of the fused dequant kernels. Two loop families (KernelSpec::family):
//
// RowsK (every GGUF quantized type, compressed-tensors 4-bit): the codes of one output channel n
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
// Int8 activations (KernelSpec::act, every GGUF type, AWQ/GPTQ 4/8-bit, CT 4/8-bit): x is quantized
//   per 32-block into `scratch` inside the kernel, weights become 8-bit codes, vpdpbusd does the
//   products (sections "RowsK with int8 activations" and "ColsN (AWQ / GPTQ 4-bit) with int8
//   activations" below, and codegen/README.md). W8A8 quantizes x per token (row) instead, as
//   its scheme does, and sums in int32 over the whole K (section "W8A8 with int8 activations").
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
    case Layout::GgufQ2_K:
    case Layout::GgufQ3_K:
    case Layout::GgufQ5_K:
      return 256;
    case Layout::CtWna16_4: // int8 activations: one 32-block of x a unit
      return s_.act == Activations::Int8 ? 32 : VL >= 16 ? 16 : 8;
    case Layout::W8a8: // f32 kernel: one vector of int8 codes a unit, a scalar tail
      return VL;
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
    case Layout::GgufQ4_1: return 20;
    case Layout::GgufQ5_0: return 22;
    case Layout::GgufQ5_1: return 24;
    case Layout::GgufQ2_K: return 84;
    case Layout::GgufQ3_K: return 110;
    case Layout::GgufQ5_K: return 176;
    default: return 0;
    }
  }
  int64_t ctRowWords() const { return (s_.k + codesPerWord() - 1) / codesPerWord(); }
  /// AWQ / GPTQ / CT: codes per int32 word (GPTQ 3-bit: none whole; see gptqUnitK).
  int codesPerWord() const { return 32 / s_.bits; }
  uint32_t codeMask() const { return (1u << s_.bits) - 1u; }
  /// GPTQ: codes along K per unit of whole qweight rows (32/b; 3-bit: 32 codes in 3 rows).
  int64_t gptqUnitK() const { return s_.bits == 3 ? 32 : codesPerWord(); }
  /// The implicit zero of the symmetric GPTQ / CT codes: 2^(bits-1) (uint4b8, uint8b128, ...).
  int32_t symZero() const { return int32_t(1) << (s_.bits - 1); }
  int64_t ctGroups() const { return s_.k / s_.group; }
  bool ctUniformGroups() const { return !s_.gIdx && s_.group % unitK() == 0; }
  int64_t nUnits() const { return s_.k / unitK(); }

  Value *rowBase(Value *n) {
    if (s_.layout == Layout::CtWna16_4)
      return gepB(P[0], b.CreateMul(n, c64(ctRowWords() * 4)));
    if (s_.layout == Layout::W8a8)
      return gepB(P[0], b.CreateMul(n, c64(s_.k)));
    return gepB(P[0], b.CreateMul(n, c64(s_.k / unitK() * blockBytes())));
  }

  /// CT: group of element k (i64) -> (scale f32, zero i32) for output channel n.
  std::pair<Value *, Value *> ctScaleZero(Value *n, Value *g) {
    Value *sc = loadScaleScalar(P[1], b.CreateAdd(b.CreateMul(n, c64(ctGroups())), g));
    Value *z = c32(symZero());
    if (s_.zeroPoint) {
      const int64_t pw = codesPerWord();
      Value *w = load(i32, gep(i32, P[2], b.CreateAdd(b.CreateMul(b.CreateUDiv(n, c64(pw)),
                                                                    c64(ctGroups())), g)), 1);
      Value *sh = b.CreateTrunc(b.CreateMul(b.CreateURem(n, c64(pw)), c64(s_.bits)), i32);
      z = b.CreateAnd(b.CreateLShr(w, sh), c32(int32_t(codeMask())));
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
    case Layout::GgufQ5_0:
      t.base = gepB(rowB, b.CreateMul(u, c64(blockBytes())));
      t.d = halfAt(t.base, 0);
      break;
    case Layout::GgufQ4_1:
    case Layout::GgufQ5_1: // w = d c + m: the min term, as Q4_K's, with ml = -m
      t.base = gepB(rowB, b.CreateMul(u, c64(blockBytes())));
      t.d = halfAt(t.base, 0);
      t.dmin = b.CreateFNeg(halfAt(t.base, 2));
      break;
    case Layout::GgufQ4_K:
    case Layout::GgufQ5_K: // the same d, dmin and 12 scale bytes at 4
      t.base = gepB(rowB, b.CreateMul(u, c64(blockBytes())));
      t.d = halfAt(t.base, 0);
      t.dmin = halfAt(t.base, 2);
      t.dl.assign(8, nullptr);
      t.ml.assign(8, nullptr);
      break;
    case Layout::GgufQ2_K:
      t.base = gepB(rowB, b.CreateMul(u, c64(blockBytes())));
      t.d = halfAt(t.base, 80);
      t.dmin = halfAt(t.base, 82);
      break;
    case Layout::GgufQ3_K:
      t.base = gepB(rowB, b.CreateMul(u, c64(blockBytes())));
      t.d = halfAt(t.base, 108);
      break;
    case Layout::GgufQ6_K:
      t.base = gepB(rowB, b.CreateMul(u, c64(blockBytes())));
      t.d = halfAt(t.base, 208);
      break;
    case Layout::W8a8:
      t.base = gepB(rowB, b.CreateMul(u, c64(unitK())));
      t.d = loadScaleScalar(P[1], n);
      break;
    case Layout::CtWna16_4: {
      t.base = gep(i32, rowB, b.CreateMul(u, c64(unitK() / codesPerWord())));
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

  /// Q2_K / Q3_K: the 16 sub-blocks' scales d * sc as <16 x float> in t.dlVec (Q2_K also the
  /// mins dmin * m in t.mlVec), decoded once per super-block, in the reference's operations.
  void kScales16(Unit &t) {
    if (t.dlVec)
      return;
    if (s_.layout == Layout::GgufQ2_K) { // byte s: scale s & 15, min s >> 4
      Value *sc = load(vi(i8, 16), t.base, 1);
      t.dlVec = b.CreateFMul(splat(16, t.d), b.CreateUIToFP(b.CreateAnd(sc, splatI8(16, 15)), vf(16)));
      t.mlVec = b.CreateFMul(splat(16, t.dmin), b.CreateUIToFP(b.CreateLShr(sc, splatI8(16, 4)), vf(16)));
      return;
    }
    // Q3_K: 6-bit scale s = (b[s % 8] >> 4 (s / 8)) & 15 | ((b[8 + s % 4] >> 2 (s / 4)) & 3) << 4,
    // used as s - 32 (the reference's kmask unpacking of the 12 bytes at 96).
    Value *v = load(vi(i8, 12), gepB(t.base, c64(96)), 1);
    std::vector<int> lo, hi;
    std::vector<int> loSh, hiSh;
    for (int l = 0; l < 16; ++l) {
      lo.push_back(l % 8);
      loSh.push_back(4 * (l / 8));
      hi.push_back(8 + l % 4);
      hiSh.push_back(2 * (l / 4));
    }
    Value *low = b.CreateAnd(b.CreateLShr(b.CreateShuffleVector(v, lo), constVecI8(loSh)), splatI8(16, 15));
    Value *high = b.CreateAnd(b.CreateLShr(b.CreateShuffleVector(v, hi), constVecI8(hiSh)), splatI8(16, 3));
    Value *sc = b.CreateOr(low, b.CreateShl(high, splatI8(16, 4)));
    Value *si = b.CreateSub(b.CreateZExt(sc, vi(i32, 16)), splat(16, c32(32)));
    t.dlVec = b.CreateFMul(splat(16, t.d), b.CreateSIToFP(si, vf(16)));
  }

  /// The j-th vector of VL weights of a unit (elements unit*unitK + j*VL ...).
  Value *unitVec(Unit &t, int j) {
    const int64_t i0 = int64_t(j) * VL;
    switch (s_.layout) {
    case Layout::GgufQ8_0: {
      Value *q = load(vi(i8, VL), gepB(t.base, c64(2 + i0)), 1);
      return b.CreateFMul(b.CreateSIToFP(q, vf(VL)), splat(VL, t.d));
    }
    case Layout::W8a8: { // float(w) * scale[n], the hook's order (w8a8::dequantize)
      Value *q = load(vi(i8, VL), gepB(t.base, c64(i0)), 1);
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
    case Layout::GgufQ4_1:
    case Layout::GgufQ5_0:
    case Layout::GgufQ5_1: { // element e: nibble of qs[e % 16] (high for e >= 16), Q5 bit e of qh
      const bool q5 = s_.layout != Layout::GgufQ4_1;
      const int64_t qsAt = s_.layout == Layout::GgufQ4_1 ? 4 : s_.layout == Layout::GgufQ5_0 ? 6 : 8;
      Value *q = load(vi(i8, VL), gepB(t.base, c64(qsAt + i0 % 16)), 1);
      if (i0 >= 16)
        q = b.CreateLShr(q, splatI8(VL, 4));
      q = b.CreateAnd(q, splatI8(VL, 15));
      Value *c = b.CreateZExt(q, vi(i32, VL));
      if (q5) {
        Value *qh = splat(VL, load(i32, gepB(t.base, c64(qsAt - 4)), 1));
        std::vector<int32_t> sh;
        for (int l = 0; l < VL; ++l)
          sh.push_back(int32_t(i0 + l));
        Value *bit = b.CreateAnd(b.CreateLShr(qh, constVecI32(sh)), splat(VL, c32(1)));
        c = b.CreateOr(c, b.CreateShl(bit, splat(VL, c32(4))));
      }
      if (s_.layout == Layout::GgufQ5_0) // (c - 16) * d
        return b.CreateFMul(b.CreateSIToFP(b.CreateSub(c, splat(VL, c32(16))), vf(VL)), splat(VL, t.d));
      // c * d + m (t.dmin holds -m for the int8 min term)
      return b.CreateFAdd(b.CreateFMul(b.CreateSIToFP(c, vf(VL)), splat(VL, t.d)),
                          splat(VL, b.CreateFNeg(t.dmin)));
    }
    case Layout::GgufQ2_K:
    case Layout::GgufQ3_K: {
      // element e: 128-half h, shift pair jj, 16-half hf, l: qs byte 32 h + 16 hf + l >> 2 jj;
      // Q3_K's high bit: hmask byte 16 hf + l, bit 4 h + jj (clear: code - 4). Scale e / 16.
      int64_t h = i0 / 128, tt = i0 % 128, jj = tt / 32, hf = (tt % 32) / 16, l0 = tt % 16;
      int sb = int(i0 / 16);
      const bool q3 = s_.layout == Layout::GgufQ3_K;
      kScales16(t);
      Value *q = load(vi(i8, VL), gepB(t.base, c64((q3 ? 32 : 16) + 32 * h + 16 * hf + l0)), 1);
      if (jj)
        q = b.CreateLShr(q, splatI8(VL, int(2 * jj)));
      q = b.CreateAnd(q, splatI8(VL, 3));
      Value *dl = splat(VL, b.CreateExtractElement(t.dlVec, uint64_t(sb)));
      if (!q3)
        return b.CreateFSub(b.CreateFMul(dl, b.CreateUIToFP(q, vf(VL))),
                            splat(VL, b.CreateExtractElement(t.mlVec, uint64_t(sb))));
      Value *hm = load(vi(i8, VL), gepB(t.base, c64(16 * hf + l0)), 1);
      if (4 * h + jj)
        hm = b.CreateLShr(hm, splatI8(VL, int(4 * h + jj)));
      hm = b.CreateAnd(hm, splatI8(VL, 1));
      Value *c = b.CreateOr(q, b.CreateShl(hm, splatI8(VL, 2)));
      Value *v = b.CreateSub(b.CreateZExt(c, vi(i32, VL)), splat(VL, c32(4)));
      return b.CreateFMul(dl, b.CreateSIToFP(v, vf(VL)));
    }
    case Layout::GgufQ5_K: {
      int64_t c = i0 / 64, hi = (i0 % 64) / 32, l0 = i0 % 32;
      int sb = int(i0 / 32);
      q4kScales(t, sb);
      Value *q = load(vi(i8, VL), gepB(t.base, c64(48 + 32 * c + l0)), 1);
      if (hi)
        q = b.CreateLShr(q, splatI8(VL, 4));
      q = b.CreateAnd(q, splatI8(VL, 15));
      Value *qh = load(vi(i8, VL), gepB(t.base, c64(16 + l0)), 1);
      if (2 * c + hi)
        qh = b.CreateLShr(qh, splatI8(VL, int(2 * c + hi)));
      qh = b.CreateShl(b.CreateAnd(qh, splatI8(VL, 1)), splatI8(VL, 4));
      Value *qf = b.CreateUIToFP(b.CreateOr(q, qh), vf(VL));
      return b.CreateFSub(b.CreateFMul(splat(VL, t.dl[sb]), qf), splat(VL, t.ml[sb]));
    }
    case Layout::CtWna16_4: {
      // Lanes l: element i0 + l of the unit: word (i0 + l) / pf, code (i0 + l) % pf.
      const int64_t pw = codesPerWord();
      int64_t w0 = i0 / pw, nw = (i0 % pw + VL + pw - 1) / pw;
      Value *words = load(vi(i32, int(nw)), gep(i32, t.base, c64(w0)), 1);
      std::vector<int> mask;
      std::vector<int32_t> shifts;
      for (int l = 0; l < VL; ++l) {
        int64_t rel = i0 % pw + l;
        mask.push_back(int(rel / pw));
        shifts.push_back(int32_t(s_.bits * (rel % pw)));
      }
      Value *v = b.CreateShuffleVector(words, mask);
      v = b.CreateAnd(b.CreateLShr(v, constVecI32(shifts)), splat(VL, c32(int32_t(codeMask()))));
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
    if (s_.layout == Layout::W8a8) // W8A8's K tail (K not a multiple of VL)
      return b.CreateFMul(b.CreateSIToFP(load(i8, gepB(rowBase(n), k), 1), f32),
                          loadScaleScalar(P[1], n));
    const int64_t pw = codesPerWord();
    Value *w = load(i32, gep(i32, P[0], b.CreateAdd(b.CreateMul(n, c64(ctRowWords())),
                                                    b.CreateUDiv(k, c64(pw)))), 1);
    Value *sh = b.CreateTrunc(b.CreateMul(b.CreateURem(k, c64(pw)), c64(s_.bits)), i32);
    Value *code = b.CreateAnd(b.CreateLShr(w, sh), c32(int32_t(codeMask())));
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

  /// m-tiles of MR then 1 rows over [mBegin, mEnd).
  void mTiles(Value *mBegin, Value *mEnd, const std::function<void(Value *, int)> &tile, int MR = 4) {
    Value *m = MR == 1 ? mBegin
                       : loop(mBegin, b.CreateSub(mEnd, c64(MR - 1)), MR, [&](Value *m0) { tile(m0, MR); }, "m4");
    loop(m, mEnd, 1, [&](Value *m0) { tile(m0, 1); }, "m1");
  }

  void emitRowsK() {
    if (s_.mclass == MClass::Gemv) {
      auto nTile = [&](Value *n0, int R) {
        mTiles(c64(0), Mrows, [&](Value *m0, int MR) { rowsGemvTile(m0, MR, n0, R); });
      };
      // K-quants: 2 rows a tile, half the code of 4 (their super-block decode is long: the 4-row
      // tile compiled in 60-80 ms).
      const int R = kQuant() ? 2 : int(kRowsNR);
      Value *n = loop(NB, b.CreateSub(NE, c64(R - 1)), R, [&](Value *n0) { nTile(n0, R); }, "n4");
      if (s_.n % R) // chunks start at multiples of kRowsNR: only N's tail is ragged
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
  // start value) and sx_b = dx_b * sum(xq) (Q4_K's min term). With one scale per super-block
  // (KernelSpec::actScaleBlock), dx_b is the super-block's and the sums are stored without it.
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
    case Layout::GgufQ5_0: return 16;
    case Layout::GgufQ3_K: return 4;
    case Layout::Awq4:
    case Layout::Gptq4:
    case Layout::Marlin:
    case Layout::NpuW4:
    case Layout::NpuW8: return 1; // the record holds -sum(xq); times the per-channel zero
    case Layout::CtWna16_4: return s_.zeroPoint ? 1 : symZero(); // asym: as AWQ / GPTQ
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
  bool splitBias() const { return s_.layout == Layout::GgufQ6_K || s_.layout == Layout::GgufQ3_K; }
  /// Q2_K: a min per 16 elements, so the record holds dx * sum(xq) of each 16-element half (at
  /// +4 and +8, as f32; Q2_K has no bias) and the min terms are 16 lanes a super-block.
  bool halfMins() const { return s_.layout == Layout::GgufQ2_K; }
  /// The super-block layouts (256 elements, sub-block scales): the K-quant int8 paths.
  bool kQuant() const {
    switch (s_.layout) {
    case Layout::GgufQ4_K:
    case Layout::GgufQ6_K:
    case Layout::GgufQ2_K:
    case Layout::GgufQ3_K:
    case Layout::GgufQ5_K:
      return true;
    default:
      return false;
    }
  }
  /// Q2_K / Q3_K / Q5_K: gemm N tails (< 32 channels) use the register tile, not the narrow panel.
  bool newKQuant() const {
    return s_.layout == Layout::GgufQ2_K || s_.layout == Layout::GgufQ3_K || s_.layout == Layout::GgufQ5_K;
  }
  /// The super-block's min terms as <maccWidth() x float> (Q4_K / Q5_K: 8 sub-blocks dmin * m,
  /// Q2_K: 16) and the matching dx * sum(xq) of x row i from block blk0.
  Value *superMins(Unit &t) {
    if (halfMins()) {
      kScales16(t);
      return t.mlVec;
    }
    q4kScales(t, 0);
    return t.mlVec;
  }
  Value *superSx(Value *i, Value *blk0) {
    if (!halfMins())
      return sx8(i, blk0);
    Value *v = UndefValue::get(vf(16));
    for (int j = 0; j < 16; ++j)
      v = b.CreateInsertElement(v, load(f32, gepB(blockDataAt(1, i, b.CreateAdd(blk0, c64(j / 2))),
                                                  c64(4 * (j % 2))), 4), uint64_t(j));
    return v;
  }
  /// 4-bit AWQ / GPTQ / CT: xq stored per 8 as [x0 x2 x4 x6 x1 x3 x5 x7] (nibble pairs of a byte).
  bool evenOddX() const {
    return s_.bits == 4 && (s_.family() == Family::ColsN || s_.layout == Layout::CtWna16_4);
  }
  /// Compressed-tensors with zero points: the start value is z * (-sum xq) per channel and group.
  bool ctAsym() const { return s_.layout == Layout::CtWna16_4 && s_.zeroPoint; }
  /// Q4_1 / Q5_1: w = d c + m per 32-block, the min term of a block m * sx (as Q4_K's).
  bool legacyMins() const { return s_.layout == Layout::GgufQ4_1 || s_.layout == Layout::GgufQ5_1; }
  bool hasMins() const {
    return s_.layout == Layout::GgufQ4_K || s_.layout == Layout::GgufQ5_K || halfMins() || legacyMins();
  }
  /// gemv min accumulators: Q4_K 8 sub-blocks a super-block, Q4_1 / Q5_1 2 blocks a pair.
  int maccWidth() const { return legacyMins() ? 2 : halfMins() ? 16 : 8; }

  /// Quantizes rows [mb, mEnd) of x into scratch rows [0, mEnd - mb).
  void quantizeRows(Value *mb, Value *mEnd) {
    const int B = int(kActBlock);
    // One scale per super-block (actScaleBlock 256): the records' sums of xq stay integers (as
    // f32), the wide tile applies dx per super-block.
    const bool super = s_.actScaleBlock() != kActBlock;
    loop(mb, mEnd, 1, [&](Value *m) {
      Value *i = b.CreateSub(m, mb);
      Value *xr = gep(f32, X, b.CreateMul(m, c64(s_.k)));
      loop(c64(0), c64(nBlk()), 1, [&](Value *blk) {
        Value *v = load(vf(B), gep(f32, xr, b.CreateMul(blk, c64(B))), 4);
        // max |x| through the bit patterns (|x| orders like its bits as unsigned); with one
        // scale per super-block, over the block's 8-block unit.
        auto absBits = [&](Value *x) {
          return b.CreateAnd(b.CreateBitCast(x, vi(i32, B)), splat(B, c32(0x7fffffff)));
        };
        Value *bits = absBits(v);
        if (super) {
          Value *unit0 = b.CreateMul(b.CreateAnd(blk, c64(~int64_t(7))), c64(B));
          bits = absBits(load(vf(B), gep(f32, xr, unit0), 4));
          for (int j = 1; j < 8; ++j) {
            Value *xj = load(vf(B), gep(f32, xr, b.CreateAdd(unit0, c64(j * B))), 4);
            bits = b.CreateBinaryIntrinsic(Intrinsic::umax, bits, absBits(xj));
          }
        }
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
        Value *q8 = q;
        if (evenOddX()) { // per 8: even k then odd k (colsInt8Codes, CT 4-bit int8Pair)
          std::vector<int> perm;
          for (int l = 0; l < B; ++l)
            perm.push_back(l / 8 * 8 + (l % 8 < 4 ? 2 * (l % 8) : 2 * (l % 8 - 4) + 1));
          q8 = b.CreateShuffleVector(q, perm);
        }
        store(b.CreateTrunc(q8, vi(i8, B)), xqAt(i, blk), 1);
        store(dx, blockDataAt(0, i, blk), 4);
        Value *zp = c32(-zeroPoint8());
        Value *biasAt = blockDataAt(1, i, blk);
        auto scaled = [&](Value *isum) {
          Value *f = b.CreateSIToFP(isum, f32);
          return super ? f : b.CreateFMul(dx, f);
        };
        if (halfMins()) {
          store(scaled(sLo), biasAt, 4);
          store(scaled(sHi), gepB(biasAt, c64(4)), 4);
        } else {
          store(b.CreateMul(splitBias() ? sLo : isum, zp), biasAt, 4);
          store(b.CreateMul(splitBias() ? sHi : c32(0), zp), gepB(biasAt, c64(4)), 4);
        }
        store(scaled(isum), blockDataAt(2, i, blk), 4);
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
    case Layout::GgufQ4_1:
    case Layout::GgufQ5_0:
    case Layout::GgufQ5_1: { // nibbles at qs (elements j, j + 16 of byte j), Q5 high bits in qh
      const bool q5 = s_.layout != Layout::GgufQ4_1;
      const int64_t qsAt = s_.layout == Layout::GgufQ4_1 ? 4 : s_.layout == Layout::GgufQ5_0 ? 6 : 8;
      auto codes32 = [&](Unit &t) {
        Value *v = load(vi(i8, 16), gepB(t.base, c64(qsAt)), 1);
        Value *c = concat(b.CreateAnd(v, splatI8(16, 15)), b.CreateLShr(v, splatI8(16, 4)));
        if (q5) { // bit e of qh is element e's fifth bit
          Value *qh = splat(32, load(i32, gepB(t.base, c64(qsAt - 4)), 1));
          std::vector<int32_t> sh;
          for (int e = 0; e < 32; ++e)
            sh.push_back(e);
          Value *bit = b.CreateAnd(b.CreateLShr(qh, constVecI32(sh)), splat(32, c32(1)));
          c = b.CreateOr(c, b.CreateShl(b.CreateTrunc(bit, vi(i8, 32)), splatI8(32, 4)));
        }
        return c;
      };
      Value *c1 = t1 ? codes32(*t1) : Constant::getNullValue(vi(i8, 32));
      return {concat(codes32(t0), c1), pairScale(t0.d, t1 ? t1->d : ConstantFP::get(f32, 0.0))};
    }
    case Layout::CtWna16_4: { // one 32-block = 4 words (4-bit) or 8 words (8-bit) of a row
      Value *sc = pairScale(t0.s, t1 ? t1->s : ConstantFP::get(f32, 0.0));
      if (s_.bits == 8) {
        Value *a = load(vi(i8, 32), t0.base, 4);
        Value *c = t1 ? load(vi(i8, 32), t1->base, 4) : Constant::getNullValue(vi(i8, 32));
        return {concat(a, c), sc};
      }
      // 4-bit: word w holds elements 8w .. 8w+7; its low nibbles are the even elements and its
      // high nibbles the odd ones, the order quantizeRows stores xq in (evenOddX).
      Value *a = load(vi(i32, 4), t0.base, 4);
      Value *c = t1 ? load(vi(i32, 4), t1->base, 4) : Constant::getNullValue(vi(i32, 4));
      Value *v = concat(a, c);
      Value *m = splat(8, c32(0x0F0F0F0F));
      Value *lo = b.CreateAnd(v, m), *hi = b.CreateAnd(b.CreateLShr(v, splat(8, c32(4))), m);
      std::vector<int> idx;
      for (int w = 0; w < 8; ++w) {
        idx.push_back(w);
        idx.push_back(8 + w);
      }
      return {b.CreateBitCast(b.CreateShuffleVector(lo, hi, idx), vi(i8, 64)), sc};
    }
    case Layout::GgufQ4_K: {
      Value *v = load(vi(i8, 32), gepB(t0.base, c64(16 + 32 * p)), 1);
      Value *q = concat(b.CreateAnd(v, splatI8(32, 15)), b.CreateLShr(v, splatI8(32, 4)));
      q4kScales(t0, 2 * p);
      q4kScales(t0, 2 * p + 1);
      return {q, pairScale(t0.dl[2 * p], t0.dl[2 * p + 1])};
    }
    case Layout::GgufQ2_K:
    case Layout::GgufQ3_K: {
      // Sub-blocks 4p .. 4p+3: the 32 qs bytes of 128-half h shifted by 2 jj (jj = 2 (p % 2) and
      // jj + 1); Q3_K's high bit (hmask bit 4 h + jj) as bit 2 of the code, zero point 4.
      const bool q3 = s_.layout == Layout::GgufQ3_K;
      int h = p / 2, jj = 2 * (p % 2);
      kScales16(t0);
      Value *v = load(vi(i8, 32), gepB(t0.base, c64((q3 ? 32 : 16) + 32 * h)), 1);
      Value *hm = q3 ? load(vi(i8, 32), t0.base, 1) : nullptr;
      auto codes = [&](int j) {
        Value *c = j ? b.CreateLShr(v, splatI8(32, 2 * j)) : v;
        c = b.CreateAnd(c, splatI8(32, 3));
        if (q3) {
          int bit = 4 * h + j;
          Value *hb = bit ? b.CreateLShr(hm, splatI8(32, bit)) : hm;
          c = b.CreateOr(c, b.CreateShl(b.CreateAnd(hb, splatI8(32, 1)), splatI8(32, 2)));
        }
        return c;
      };
      std::vector<int> idx;
      for (int l = 0; l < 16; ++l)
        idx.push_back(4 * p + l / 4);
      return {concat(codes(jj), codes(jj + 1)), b.CreateShuffleVector(t0.dlVec, idx)};
    }
    case Layout::GgufQ5_K: {
      Value *v = load(vi(i8, 32), gepB(t0.base, c64(48 + 32 * p)), 1);
      Value *qh = load(vi(i8, 32), gepB(t0.base, c64(16)), 1);
      auto hbit = [&](int bit) {
        Value *x = bit ? b.CreateLShr(qh, splatI8(32, bit)) : qh;
        return b.CreateShl(b.CreateAnd(x, splatI8(32, 1)), splatI8(32, 4));
      };
      Value *q = concat(b.CreateOr(b.CreateAnd(v, splatI8(32, 15)), hbit(2 * p)),
                        b.CreateOr(b.CreateLShr(v, splatI8(32, 4)), hbit(2 * p + 1)));
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

  /// Q4_0 gemv: the codes and per-lane scales of blocks blk, blk + 1 of a row from one 36-byte
  /// (masked, so never past the weights) load, with two byte/word permutes and a variable shift
  /// instead of the generic pair's inserts and broadcasts, which all queue on one shuffle port:
  /// that port, not memory, bounded the generic gemv (~10 GB/s of weights per core). The lanes
  /// come in interleaveLanes' order.
  std::pair<Value *, Value *> q4_0PairInterleaved(Value *rowB, Value *blk) {
    std::vector<Constant *> mask;
    for (int l = 0; l < 64; ++l)
      mask.push_back(b.getInt1(l < 36));
    Value *v = b.CreateMaskedLoad(vi(i8, 64), gepB(rowB, b.CreateMul(blk, c64(18))), Align(1),
                                  ConstantVector::get(mask), Constant::getNullValue(vi(i8, 64)));
    std::vector<int> qs; // [qs0, qs1, qs0, qs1]: the low nibbles of lanes 0-1, high of 2-3
    for (int rep = 0; rep < 2; ++rep)
      for (int blkOff : {2, 20})
        for (int l = 0; l < 16; ++l)
          qs.push_back(blkOff + l);
    Value *q = b.CreateBitCast(b.CreateShuffleVector(v, qs), vi(i64, 8));
    std::vector<Constant *> sh;
    for (int l = 0; l < 8; ++l)
      sh.push_back(b.getInt64(l < 4 ? 0 : 4));
    q = b.CreateLShr(q, ConstantVector::get(sh));
    q = b.CreateAnd(b.CreateBitCast(q, vi(i8, 64)), splatI8(64, 15));
    std::vector<int> ds; // the f16 d of block 0 (word 0) and block 1 (word 9), 4 lanes each
    for (int rep = 0; rep < 2; ++rep)
      for (int w : {0, 9})
        for (int l = 0; l < 4; ++l)
          ds.push_back(w);
    Value *d = b.CreateShuffleVector(b.CreateBitCast(v, VectorType::get(f16, 32, false)), ds);
    return {q, b.CreateFPExt(d, vf(16))};
  }

  Value *dot16(Value *acc, Value *codes, Value *xq) {
    Function *f = Intrinsic::getDeclaration(&M_, Intrinsic::x86_avx512_vpdpbusd_512);
    return b.CreateCall(f, {acc, b.CreateBitCast(codes, vi(i32, 16)), b.CreateBitCast(xq, vi(i32, 16))});
  }

  /// z * negSum per lane, exact, as one vpdpwssd (vpmulld is two uops on the port the dot
  /// products use): z (a zero point, 0 .. 256) and negSum (-sum of a block's xq, |.| <= 127 * 32)
  /// both fit the low int16 of their lane, and z's high half is 0, so the pairwise product sum
  /// is z * negSum.
  Value *zeroTimesSum(Value *z, Value *negSum) {
    Function *f = Intrinsic::getDeclaration(&M_, Intrinsic::x86_avx512_vpdpwssd_512);
    return b.CreateCall(f, {Constant::getNullValue(vi(i32, 16)), z, negSum});
  }

  /// The 128-bit lanes of a pair in the order of q4_0PairInterleaved's codes: block 0's elements
  /// 0..15, block 1's 0..15, block 0's 16..31, block 1's 16..31.
  static constexpr int kInterleave[4] = {0, 2, 1, 3};
  Value *interleaveLanes(Value *v, int laneElems) {
    std::vector<int> idx;
    for (int q : kInterleave)
      for (int l = 0; l < laneElems; ++l)
        idx.push_back(q * laneElems + l);
    return b.CreateShuffleVector(v, idx);
  }

  /// CT with zero points: [z(block t0) x 8, z(block t1) x 8] (0 for a missing second block).
  Value *ctPairZero(Unit &t0, Unit *t1) { return concat(splat(8, t0.z), splat(8, t1 ? t1->z : c32(0))); }
  std::vector<Value *> ctPairZeros(std::vector<Unit> &u0, std::vector<Unit> *u1) {
    std::vector<Value *> zs;
    for (size_t r = 0; r < u0.size(); ++r)
      zs.push_back(ctPairZero(u0[r], u1 ? &(*u1)[r] : nullptr));
    return zs;
  }

  /// acc[i][r] += (sum over the pair of 32-blocks at blk of (c - zp) * xq) * sw * dx. With `zs`
  /// (CT zero points, <16 x i32> per row r) the bias, -sum xq per block, is multiplied by them.
  /// `interleaved`: the pair's codes are in q4_0PairInterleaved's order (int32 lanes 0..3 and
  /// 8..11 block blk, 4..7 and 12..15 block blk + 1); x, its scales and the bias follow.
  void int8PairStep(std::vector<std::vector<AllocaInst *>> &acc, const std::vector<Value *> &xi,
                    Value *blk, std::vector<std::pair<Value *, Value *>> &w, bool single,
                    const std::vector<Value *> *zs = nullptr, bool interleaved = false) {
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
      if (interleaved) {
        xq = interleaveLanes(xq, 16);
        dx = interleaveLanes(dx, 4);
      }
      if (zp)
        for (int bb = 0; bb < (single ? 1 : 2); ++bb) {
          Value *at = blockDataAt(1, xi[i], bb ? blk1 : blk);
          bias = b.CreateInsertElement(bias, load(i32, at, 4), uint64_t((interleaved ? 4 : 8) * bb));
          if (splitBias())
            bias = b.CreateInsertElement(bias, load(i32, gepB(at, c64(4)), 4), uint64_t(8 * bb + 4));
        }
      for (size_t r = 0; r < w.size(); ++r) {
        Value *start = zs ? b.CreateMul(bias, (*zs)[r]) : bias;
        Value *d = b.CreateSIToFP(dot16(start, w[r].first, xq), vf(16));
        store(fma(d, b.CreateFMul(w[r].second, dx), load(vf(16), acc[i][r], 4)), acc[i][r], 4);
      }
    }
  }

  void int8Store(std::vector<std::vector<AllocaInst *>> &acc,
                 std::vector<std::vector<AllocaInst *>> &macc, Value *m0, int MR, Value *n0, int R) {
    const bool mins = hasMins();
    for (int i = 0; i < MR; ++i)
      for (int r = 0; r < R; ++r) {
        Value *v = hsum(load(vf(16), acc[i][r], 4));
        if (mins)
          v = b.CreateFSub(v, hsum(load(vf(maccWidth()), macc[i][r], 4)));
        Value *yi = b.CreateAdd(b.CreateMul(b.CreateAdd(m0, c64(i)), c64(s_.n)),
                                b.CreateAdd(n0, c64(r)));
        store(v, gep(f32, Y, yi), 4);
      }
  }

  /// Q4_1 / Q5_1: macc[i][r] += [ml, ml'] * [sx, sx'] of the pair of blocks at blk (u1 null: one).
  void legacyMinStep(std::vector<std::vector<AllocaInst *>> &macc, const std::vector<Value *> &xi,
                     Value *blk, std::vector<Unit> &u0, std::vector<Unit> *u1) {
    Value *zero = ConstantFP::get(f32, 0.0);
    for (size_t i = 0; i < xi.size(); ++i) {
      Value *sx = b.CreateInsertElement(UndefValue::get(vf(2)), load(f32, blockDataAt(2, xi[i], blk), 4), uint64_t(0));
      sx = b.CreateInsertElement(sx, u1 ? load(f32, blockDataAt(2, xi[i], b.CreateAdd(blk, c64(1))), 4) : zero, uint64_t(1));
      for (size_t r = 0; r < u0.size(); ++r) {
        Value *ml = b.CreateInsertElement(UndefValue::get(vf(2)), u0[r].dmin, uint64_t(0));
        ml = b.CreateInsertElement(ml, u1 ? (*u1)[r].dmin : zero, uint64_t(1));
        store(fma(ml, sx, load(vf(2), macc[i][r], 4)), macc[i][r], 4);
      }
    }
  }

  /// gemv: prefetch the next n-tile's weights while this one runs, in proportion (step `u` of
  /// the tile's K walk prefetches step u's share of the next tile's R rows, which are contiguous
  /// after this tile's). The tile's R rows are R concurrent streams with short rows (K = 4096 Q4_0:
  /// 2304 bytes), which the hardware prefetchers ramp up on too late; past the end of the weights
  /// nothing is dereferenced (prefetches do not fault).
  void prefetchNextTile(Value *rowB0, int R, Value *u, int64_t stepBytes) {
    const int64_t rowBytes = s_.k / unitK() * blockBytes(), dist = R * rowBytes;
    Value *at = gepB(rowB0, b.CreateAdd(c64(dist), b.CreateMul(u, c64(R * stepBytes))));
    for (int64_t off = 0; off < R * stepBytes; off += 64)
      b.CreateIntrinsic(Intrinsic::prefetch, {ptr},
                        {gepB(at, c64(off)), b.getInt32(0), b.getInt32(3), b.getInt32(1)});
  }

  /// Rows [m0, m0+MR) (scratch rows m0 - mb ...) x channels [n0, n0+R).
  void int8Tile(Value *mb, Value *m0, int MR, Value *n0, int R) {
    const bool kq = kQuant();
    const bool mins = hasMins(), prefetch = s_.mclass == MClass::Gemv;
    std::vector<std::vector<AllocaInst *>> acc(MR, std::vector<AllocaInst *>(R)), macc = acc;
    for (int i = 0; i < MR; ++i)
      for (int r = 0; r < R; ++r) {
        acc[i][r] = slot(vf(16), "acc");
        store(Constant::getNullValue(vf(16)), acc[i][r], 4);
        if (mins) {
          macc[i][r] = slot(vf(maccWidth()), "macc");
          store(Constant::getNullValue(vf(maccWidth())), macc[i][r], 4);
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
        if (prefetch)
          prefetchNextTile(rowB[0], R, u, blockBytes());
        Value *blk0 = b.CreateMul(u, c64(8));
        for (int p = 0; p < 4; ++p) {
          std::vector<std::pair<Value *, Value *>> w;
          for (int r = 0; r < R; ++r)
            w.push_back(int8Pair(units[r], nullptr, p));
          pairStep(b.CreateAdd(blk0, c64(2 * p)), w, false);
        }
        if (mins) { // sum_j dmin m_j * sx_j over the 8 (Q2_K: 16) sub-blocks, as lanes
          const int mw = maccWidth();
          std::vector<Value *> mlv(R);
          for (int r = 0; r < R; ++r)
            mlv[r] = superMins(units[r]);
          for (int i = 0; i < MR; ++i) {
            Value *sx = superSx(xi[i], blk0);
            for (int r = 0; r < R; ++r)
              store(fma(mlv[r], sx, load(vf(mw), macc[i][r], 4)), macc[i][r], 4);
          }
        }
      }, "u");
    } else {
      loop(c64(0), c64(nBlk() / 2), 1, [&](Value *u2) {
        Value *blk = b.CreateMul(u2, c64(2));
        if (prefetch)
          prefetchNextTile(rowB[0], R, u2, 2 * blockBytes());
        if (s_.layout == Layout::GgufQ4_0) {
          std::vector<std::pair<Value *, Value *>> w;
          for (int r = 0; r < R; ++r)
            w.push_back(q4_0PairInterleaved(rowB[r], blk));
          int8PairStep(acc, xi, blk, w, false, nullptr, true);
          return;
        }
        std::vector<Unit> u0, u1;
        for (int r = 0; r < R; ++r) {
          u0.push_back(setupUnit(rowB[r], rows[r], blk));
          u1.push_back(setupUnit(rowB[r], rows[r], b.CreateAdd(blk, c64(1))));
        }
        std::vector<std::pair<Value *, Value *>> w;
        for (int r = 0; r < R; ++r)
          w.push_back(int8Pair(u0[r], &u1[r], 0));
        if (ctAsym()) {
          std::vector<Value *> zs = ctPairZeros(u0, &u1);
          int8PairStep(acc, xi, blk, w, false, &zs);
        } else {
          pairStep(blk, w, false);
        }
        if (mins)
          legacyMinStep(macc, xi, blk, u0, &u1);
      }, "u");
      if (nBlk() % 2) {
        Value *blk = c64(nBlk() - 1);
        std::vector<Unit> u0;
        for (int r = 0; r < R; ++r)
          u0.push_back(setupUnit(rowB[r], rows[r], blk));
        std::vector<std::pair<Value *, Value *>> w;
        for (int r = 0; r < R; ++r)
          w.push_back(int8Pair(u0[r], nullptr, 0));
        if (ctAsym()) {
          std::vector<Value *> zs = ctPairZeros(u0, nullptr);
          int8PairStep(acc, xi, blk, w, true, &zs);
        } else {
          pairStep(blk, w, true);
        }
        if (mins)
          legacyMinStep(macc, xi, blk, u0, nullptr);
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
    const bool kq = kQuant();
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
  int nHalves() const {
    return s_.layout == Layout::GgufQ6_K || s_.layout == Layout::GgufQ3_K || halfMins() ? 2 : 1;
  }
  /// Rows of mins per block in the wide panel (Q2_K: one per 16-element half).
  int minSlots() const { return hasMins() ? (halfMins() ? 2 : 1) : 0; }
  int64_t minOff(int hh) const { return 1024 + 128 * nHalves() + 128 * hh; }
  int64_t wideBlockBytes() const {
    return wideZeroOffset() + (ctAsym() ? 128 : 0);
  }
  /// CT with zero points: 32 int32 zeros a block after the scales.
  int64_t wideZeroOffset() const { return 1024 + 128 * nHalves() + 128 * minSlots(); }
  Value *widePanel(Value *blk, int64_t off) {
    return gepB(Scratch, b.CreateAdd(c64(panelOffset() + off), b.CreateMul(blk, c64(wideBlockBytes()))));
  }
  void fillWidePanel(Value *n0) {
    const bool kq = kQuant();
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
          if (s_.layout == Layout::GgufQ4_K || s_.layout == Layout::GgufQ5_K)
            for (int j = 0; j < 8; ++j) {
              q4kScales(t, j);
              store(t.ml[j], gepB(widePanel(b.CreateAdd(blk0, c64(j)), 1024 + 128), n4), 4);
            }
          if (halfMins()) {
            kScales16(t);
            for (int j = 0; j < 16; ++j)
              store(b.CreateExtractElement(t.mlVec, uint64_t(j)),
                    gepB(widePanel(b.CreateAdd(blk0, c64(j / 2)), minOff(j % 2)), n4), 4);
          }
        }, "wf");
        return;
      }
      loop(c64(0), c64(nBlk() / 2), 1, [&](Value *u2) {
        Value *blk = b.CreateMul(u2, c64(2));
        Unit t0 = setupUnit(rb, row, blk);
        Unit t1 = setupUnit(rb, row, b.CreateAdd(blk, c64(1)));
        put(blk, int8Pair(t0, &t1, 0), true);
        if (ctAsym())
          for (int bb = 0; bb < 2; ++bb)
            store((bb ? t1 : t0).z, gepB(widePanel(b.CreateAdd(blk, c64(bb)), wideZeroOffset()), n4), 4);
        if (legacyMins())
          for (int bb = 0; bb < 2; ++bb)
            store((bb ? t1 : t0).dmin, gepB(widePanel(b.CreateAdd(blk, c64(bb)), 1024 + 128), n4), 4);
      }, "wf");
      if (nBlk() % 2) {
        Unit t0 = setupUnit(rb, row, c64(nBlk() - 1));
        put(c64(nBlk() - 1), int8Pair(t0, nullptr, 0), false);
        if (ctAsym())
          store(t0.z, gepB(widePanel(c64(nBlk() - 1), wideZeroOffset()), n4), 4);
        if (legacyMins())
          store(t0.dmin, gepB(widePanel(c64(nBlk() - 1), 1024 + 128), n4), 4);
      }
    }, "wn");
  }

  /// Rows [m0, m0+MR) x channels [n0, n0 + kWideN) on the wide panel.
  /// Lanes = channels tiles: y[m0 + i, n0 + 16 v ..] = acc[i][v] (- macc[i][v]), as vectors.
  void storeLaneTiles(std::vector<std::vector<AllocaInst *>> &acc,
                      std::vector<std::vector<AllocaInst *>> *macc, Value *m0, Value *n0) {
    for (size_t i = 0; i < acc.size(); ++i)
      for (size_t v = 0; v < acc[i].size(); ++v) {
        Value *r = load(vf(16), acc[i][v], 4);
        if (macc)
          r = b.CreateFSub(r, load(vf(16), (*macc)[i][v], 4));
        Value *yi = b.CreateAdd(b.CreateMul(b.CreateAdd(m0, c64(int64_t(i))), c64(s_.n)),
                                b.CreateAdd(n0, c64(16 * int64_t(v))));
        store(r, gep(f32, Y, yi), 4);
      }
  }

  /// x rows of a wide tile: 6 x 2 accumulators and 6 x 2 block sums fit the 32 registers with
  /// the operands (4 rows: 5-10% slower prefill, each panel word loaded for fewer rows).
  static constexpr int kWideMR = 6;
  void wideTile(Value *mb, Value *m0, int MR, Value *n0) {
    const int NV = int(kWideN / 16);
    const bool zp = zeroPoint8() != 0;
    // The min terms go into acc too (negated FMAs): separate accumulators spilled at MR = 4.
    std::vector<std::vector<AllocaInst *>> acc(MR, std::vector<AllocaInst *>(NV));
    for (int i = 0; i < MR; ++i)
      for (int v = 0; v < NV; ++v) {
        acc[i][v] = slot(vf(16), "acc");
        store(Constant::getNullValue(vf(16)), acc[i][v], 4);
      }
    std::vector<Value *> xi(MR);
    for (int i = 0; i < MR; ++i)
      xi[i] = b.CreateAdd(b.CreateSub(m0, mb), c64(i));
    // One x scale per super-block (actScaleBlock): the blocks accumulate sw * sum and -ml *
    // sum(xq) into sacc, which takes dx once per super-block (one FMA less per block and
    // accumulator); acc stays in memory across the block loop (it is read once per 8 blocks).
    const bool super = s_.actScaleBlock() != kActBlock;
    std::vector<std::vector<AllocaInst *>> sacc = acc;
    if (super)
      for (int i = 0; i < MR; ++i)
        for (int v = 0; v < NV; ++v)
          sacc[i][v] = slot(vf(16), "sacc");
    auto blockStep = [&](Value *blk) {
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
            ia[i][v] = ctAsym() ? b.CreateMul(load(vi(i32, 16), widePanel(blk, wideZeroOffset() + v * 64), 4), bias)
                                : bias;
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
            store(fma(b.CreateSIToFP(ia[i][v], vf(16)), super ? sw : b.CreateFMul(sw, dx[i]),
                      load(vf(16), sacc[i][v], 4)), sacc[i][v], 4);
        }
      }
      for (int hh = 0; hh < minSlots(); ++hh)
        for (int v = 0; v < NV; ++v) {
          Value *ml = load(vf(16), widePanel(blk, minOff(hh) + v * 64), 4);
          for (int i = 0; i < MR; ++i) {
            Value *sxAt = halfMins() ? gepB(blockDataAt(1, xi[i], blk), c64(4 * hh))
                                     : blockDataAt(2, xi[i], blk);
            Value *sx = splat(16, load(f32, sxAt, 4));
            store(fma(b.CreateFNeg(ml), sx, load(vf(16), sacc[i][v], 4)), sacc[i][v], 4);
          }
        }
    };
    if (!super) {
      loop(c64(0), c64(nBlk()), 1, blockStep, "wb");
    } else {
      loop(c64(0), c64(nUnits()), 1, [&](Value *u) {
        for (int i = 0; i < MR; ++i)
          for (int v = 0; v < NV; ++v)
            store(Constant::getNullValue(vf(16)), sacc[i][v], 4);
        Value *blk0 = b.CreateMul(u, c64(8));
        loop(blk0, b.CreateAdd(blk0, c64(8)), 1, blockStep, "wb");
        for (int i = 0; i < MR; ++i) {
          Value *dx = splat(16, load(f32, blockDataAt(0, xi[i], blk0), 4));
          for (int v = 0; v < NV; ++v)
            store(fma(load(vf(16), sacc[i][v], 4), dx, load(vf(16), acc[i][v], 4)), acc[i][v], 4);
        }
      }, "wu");
    }
    storeLaneTiles(acc, nullptr, m0, n0);
  }

  // ---- Packing::Channels16 (GGUF blocks re-laid-out at load, codegen/repack.h) --------------
  // Lanes are output channels as in the wide tile, read straight from the weights: per 16
  // channels and block, each field (scales, code words) is one vector load, and a word's low /
  // high nibbles are the operands of two 4-element pieces, so 64 weights cost one vpdpbusd and
  // ~1.5 ALU ops, ~3 more with a fifth bit (the row layout: ~6 cycles of shuffles and per-lane
  // scale work per 64 weights and row, which bounded the gemv at ~10 GB/s of weights per core).
  int64_t c16UnitBytes() const { return 16 * blockBytes(); }
  int blocksPerUnit() const { return int(unitK() / kActBlock); }
  Value *c16Unit(Value *group, Value *u) {
    return gepB(P[0], b.CreateMul(b.CreateAdd(b.CreateMul(group, c64(nUnits())), u), c64(c16UnitBytes())));
  }
  Value *c16Halves(Value *at, int64_t off) {
    return b.CreateFPExt(load(VectorType::get(f16, 16, false), gepB(at, c64(off)), 2), vf(16));
  }
  /// For each 32-block j of the unit at `at` (16 channels): its 8 operands (k4 = 0..7), the
  /// weight scale sw (Q6_K / Q3_K / Q2_K: of operands 0..3, sw2 of 4..7, else sw2 = null) and
  /// (Q4_1 / Q5_1 / Q4_K / Q5_K / Q2_K) the min term ml of w = sw (c - zp) - ml (Q2_K: ml of
  /// operands 0..3, ml2 of 4..7, else ml2 = null), as 16-lane vectors.
  using C16Block = std::function<void(Value *j, std::vector<Value *> &ops, Value *sw, Value *ml,
                                      Value *sw2, Value *ml2)>;
  void c16Blocks(Value *at, const C16Block &f, bool unroll = false) {
    Value *mask = splat(16, c32(0x0F0F0F0F));
    auto word = [&](int64_t off) { return load(vi(i32, 16), gepB(at, c64(off)), 4); };
    auto lo = [&](Value *w) { return b.CreateAnd(w, mask); };
    auto hi = [&](Value *w) { return b.CreateAnd(b.CreateLShr(w, splat(16, c32(4))), mask); };
    // Q5: the fifth bit of operand byte i is bit 8i + r of the lanes' high-bit word (r = k4 for
    // Q5_0 / Q5_1 after the repack's transposition, the sub-block for Q5_K): rotated to bit 4.
    auto fifth = [&](Value *qh, Value *r) {
      Value *by = splat(16, b.CreateTrunc(b.CreateAnd(b.CreateSub(c64(4), r), c64(31)), i32));
      Value *rot = b.CreateIntrinsic(Intrinsic::fshl, {vi(i32, 16)}, {qh, qh, by});
      return b.CreateAnd(rot, splat(16, c32(0x10101010)));
    };
    if (s_.layout == Layout::GgufQ6_K)
      return c16Q6K(at, f, unroll);
    if (s_.layout == Layout::GgufQ3_K || s_.layout == Layout::GgufQ2_K)
      return c16Q2KQ3K(at, f, unroll);
    Value *d = c16Halves(at, 0);
    if (s_.layout == Layout::GgufQ8_0) { // d, 8 words of int8 codes: c = q + 128
      std::vector<Value *> ops(8);
      for (int k4 = 0; k4 < 8; ++k4)
        ops[size_t(k4)] = b.CreateXor(word(32 + 64 * k4), splat(16, c32(int32_t(0x80808080))));
      f(c64(0), ops, d, nullptr, nullptr, nullptr);
      return;
    }
    if (!kQuant()) { // d [, m] [, qh], then word j: elements 4j.. (low), 16 + 4j.. (high)
      const bool five = s_.layout == Layout::GgufQ5_0 || s_.layout == Layout::GgufQ5_1;
      const int64_t qhOff = legacyMins() ? 64 : 32, qsOff = qhOff + (five ? 64 : 0);
      Value *ml = legacyMins() ? b.CreateFNeg(c16Halves(at, 32)) : nullptr; // w = d c + m
      Value *qh = five ? word(qhOff) : nullptr;
      std::vector<Value *> ops(8);
      for (int j = 0; j < 4; ++j) {
        Value *w = word(qsOff + 64 * j);
        ops[size_t(j)] = lo(w);
        ops[size_t(4 + j)] = hi(w);
      }
      if (five)
        for (int k4 = 0; k4 < 8; ++k4)
          ops[size_t(k4)] = b.CreateOr(ops[size_t(k4)], fifth(qh, c64(k4)));
      f(c64(0), ops, d, ml, nullptr, nullptr);
      return;
    }
    // Q4_K / Q5_K: d, dmin, 3 words A, B, C of the 12 scale bytes, (Q5_K: 8 high-bit words, word
    // i: bit j of byte l = the fifth bit of sub-block j's element 4i + l,) 32 code words (word
    // 8p + i: sub-block 2p's elements 4i.. in the low nibbles, 2p + 1's in the high ones). The
    // 6-bit (sc, m) of sub-block j (the reference's get_scale_min_k4) are first gathered, for all
    // j at once, into one byte each of four words, lane by lane: sc0..3 = A & 63, m0..3 = B & 63,
    // sc4..7 = C & 15 | (A >> 6) << 4, m4..7 = C >> 4 | (B >> 6) << 4 bytewise; a sub-block then
    // costs one shift and mask per value (the per-j formulas cost ~3x as much in the loop).
    // The pairs p are straight-line code with `unroll` (the one-row gemv tile, decode's hot loop:
    // Q4_K / Q5_K 18-25% faster than a loop of 2 iterations of 2 pairs), else one
    // loop, a quarter of the code to compile.
    const bool five = s_.layout == Layout::GgufQ5_K;
    const int64_t qsOff = five ? 768 : 256;
    Value *dmin = c16Halves(at, 32);
    Value *A = word(64), *B = word(128), *C = word(192);
    auto bytes = [&](uint32_t m) { return splat(16, c32(m)); };
    auto shr = [&](Value *v, int n) { return b.CreateLShr(v, splat(16, c32(uint32_t(n)))); };
    Value *scOf[2] = {b.CreateAnd(A, bytes(0x3F3F3F3F)),
                      b.CreateOr(b.CreateAnd(C, bytes(0x0F0F0F0F)), b.CreateAnd(shr(A, 2), bytes(0x30303030)))};
    Value *mOf[2] = {b.CreateAnd(B, bytes(0x3F3F3F3F)),
                     b.CreateOr(b.CreateAnd(shr(C, 4), bytes(0x0F0F0F0F)), b.CreateAnd(shr(B, 2), bytes(0x30303030)))};
    // pair p: sub-blocks 2p, 2p + 1, their (sc, m) in bytes 2p % 4, 2p % 4 + 1 of scOf / mOf[p >= 2]
    auto pair = [&](Value *p, Value *sc4, Value *m4) {
      std::vector<Value *> ops[2] = {std::vector<Value *>(8), std::vector<Value *>(8)};
      for (int i = 0; i < 8; ++i) {
        Value *w = load(vi(i32, 16), gepB(at, b.CreateAdd(c64(qsOff + 64 * i), b.CreateMul(p, c64(512)))), 4);
        ops[0][size_t(i)] = lo(w);
        ops[1][size_t(i)] = hi(w);
      }
      for (int h = 0; h < 2; ++h) {
        Value *j = b.CreateAdd(b.CreateMul(p, c64(2)), c64(h));
        if (five)
          for (int i = 0; i < 8; ++i)
            ops[h][size_t(i)] = b.CreateOr(ops[h][size_t(i)], fifth(word(256 + 64 * i), j));
        Value *sh = splat(16, b.CreateTrunc(b.CreateMul(b.CreateURem(j, c64(4)), c64(8)), i32));
        Value *sc = b.CreateAnd(b.CreateLShr(sc4, sh), bytes(0xFF));
        Value *m = b.CreateAnd(b.CreateLShr(m4, sh), bytes(0xFF));
        f(j, ops[h], b.CreateFMul(d, b.CreateUIToFP(sc, vf(16))),
          b.CreateFMul(dmin, b.CreateUIToFP(m, vf(16))), nullptr, nullptr);
      }
    };
    if (unroll) {
      for (int p = 0; p < 4; ++p)
        pair(c64(p), scOf[p / 2], mOf[p / 2]);
      return;
    }
    loop(c64(0), c64(4), 1, [&](Value *p) {
      Value *upper = b.CreateICmpUGE(p, c64(2));
      pair(p, b.CreateSelect(upper, scOf[1], scOf[0]), b.CreateSelect(upper, mOf[1], mOf[0]));
    }, "pp");
  }

  /// Q6_K: 32 ql words, 16 qh words, 4 words of the 16 int8 scales, d. Half n (128 elements) is
  /// ql words 16n .. 16n + 15 and qh words 8n .. 8n + 7; its sub-block t (0..3) takes operand
  /// k4's low 4 bits from the low (t < 2) or high nibbles of ql word 16n + 8 (t % 2) + k4 and its
  /// top 2 from bits 2t, 2t + 1 of qh word 8n + k4's bytes; its 16-element halves have the
  /// scales 8n + 2t and 8n + 2t + 1 (signed bytes of the scale words). Code c in 0..63, zp 32.
  void c16Q6K(Value *at, const C16Block &f, bool unroll) {
    auto word = [&](Value *off) { return load(vi(i32, 16), gepB(at, off), 4); };
    auto vsplat = [&](Value *v64) { return splat(16, b.CreateTrunc(v64, i32)); };
    Value *mask = splat(16, c32(0x0F0F0F0F));
    Value *d = c16Halves(at, 3328);
    // Sub-block j = 4n + t (t constant when unrolled: the shifts fold).
    auto subBlock = [&](Value *n, Value *t) {
      Value *j = b.CreateAdd(b.CreateMul(n, c64(4)), t);
      Value *t2 = b.CreateURem(t, c64(2));
      Value *ql = b.CreateAdd(b.CreateMul(n, c64(16 * 64)), b.CreateMul(t2, c64(8 * 64)));
      Value *qh = b.CreateAdd(c64(2048), b.CreateMul(n, c64(8 * 64)));
      Value *nib = vsplat(b.CreateMul(b.CreateUDiv(t, c64(2)), c64(4)));            // 0 or 4
      Value *rot = vsplat(b.CreateAnd(b.CreateSub(c64(4), b.CreateMul(t, c64(2))), c64(31)));
      std::vector<Value *> ops(8);
      for (int k4 = 0; k4 < 8; ++k4) {
        Value *low = b.CreateAnd(b.CreateLShr(word(b.CreateAdd(ql, c64(64 * k4))), nib), mask);
        Value *h = word(b.CreateAdd(qh, c64(64 * k4)));
        Value *top = b.CreateIntrinsic(Intrinsic::fshl, {vi(i32, 16)}, {h, h, rot});
        ops[size_t(k4)] = b.CreateOr(low, b.CreateAnd(top, splat(16, c32(0x30303030))));
      }
      // scale s = 8n + 2t + hf: byte 2 (t % 2) + hf of scale word 2n + t / 2
      Value *scw = word(b.CreateAdd(c64(3072), b.CreateMul(b.CreateUDiv(j, c64(2)), c64(64))));
      Value *sw[2];
      for (int hf = 0; hf < 2; ++hf) {
        Value *byte = b.CreateAdd(b.CreateMul(t2, c64(2)), c64(hf));
        Value *up = vsplat(b.CreateSub(c64(24), b.CreateMul(byte, c64(8))));
        Value *sc = b.CreateAShr(b.CreateShl(scw, up), splat(16, c32(24)));
        sw[hf] = b.CreateFMul(d, b.CreateSIToFP(sc, vf(16)));
      }
      f(j, ops, sw[0], nullptr, sw[1], nullptr);
    };
    if (unroll)
      for (int j = 0; j < 8; ++j)
        subBlock(c64(j / 4), c64(j % 4));
    else
      loop(c64(0), c64(8), 1, [&](Value *j) { subBlock(b.CreateUDiv(j, c64(4)), b.CreateURem(j, c64(4))); }, "q6s");
  }

  /// Q3_K: 8 hmask words, 16 words of 2-bit codes, 3 words of the 16 6-bit scales, d. Q2_K: 4
  /// words of the 16 scale bytes (scale in the low nibble, min in the high one), 16 words of
  /// 2-bit codes, d, dmin. Block jj = 4n + j (elements 128n + 32j ..) takes operand k4's low 2
  /// bits from bits 2j, 2j + 1 of code word 8n + k4's bytes; Q3_K its third bit from bit jj of
  /// hmask word k4's bytes: c = low + 4 hbit in 0..7, zp 4 (the reference's q - (hbit ? 0 : 4)).
  /// Its 16-element halves have the scales (Q2_K: and mins) 2jj and 2jj + 1. Q3_K's 6-bit scales
  /// are unpacked as the reference does (low 4 bits from scale words A, B, high 2 from C) for
  /// all 16 at once into the bytes of four words, minus 32.
  void c16Q2KQ3K(Value *at, const C16Block &f, bool unroll) {
    const bool q3 = s_.layout == Layout::GgufQ3_K;
    auto word = [&](Value *off) { return load(vi(i32, 16), gepB(at, off), 4); };
    auto vsplat = [&](Value *v64) { return splat(16, b.CreateTrunc(v64, i32)); };
    auto bytes = [&](uint32_t m) { return splat(16, c32(m)); };
    auto shr = [&](Value *v, int n) { return b.CreateLShr(v, splat(16, c32(uint32_t(n)))); };
    const int64_t qsOff = q3 ? 512 : 256;
    Value *d = c16Halves(at, q3 ? 1728 : 1280);
    Value *dmin = q3 ? nullptr : c16Halves(at, 1312);
    Value *S[4];
    if (q3) {
      Value *A = word(c64(1536)), *B = word(c64(1600)), *C = word(c64(1664));
      auto high2 = [&](int n) {
        return b.CreateShl(b.CreateAnd(shr(C, n), bytes(0x03030303)), splat(16, c32(4)));
      };
      S[0] = b.CreateOr(b.CreateAnd(A, bytes(0x0F0F0F0F)), high2(0));
      S[1] = b.CreateOr(b.CreateAnd(B, bytes(0x0F0F0F0F)), high2(2));
      S[2] = b.CreateOr(b.CreateAnd(shr(A, 4), bytes(0x0F0F0F0F)), high2(4));
      S[3] = b.CreateOr(b.CreateAnd(shr(B, 4), bytes(0x0F0F0F0F)), high2(6));
    } else {
      for (int w = 0; w < 4; ++w)
        S[w] = word(c64(64 * w));
    }
    auto block = [&](Value *jj, Value *sWord) {
      Value *n = b.CreateLShr(jj, c64(2)), *j = b.CreateAnd(jj, c64(3));
      Value *qs = b.CreateAdd(c64(qsOff), b.CreateMul(n, c64(8 * 64)));
      Value *lowShift = vsplat(b.CreateMul(j, c64(2)));
      std::vector<Value *> ops(8);
      for (int k4 = 0; k4 < 8; ++k4) {
        Value *codes = word(b.CreateAdd(qs, c64(64 * k4)));
        ops[size_t(k4)] = b.CreateAnd(b.CreateLShr(codes, lowShift), bytes(0x03030303));
        if (q3) { // hmask bit jj -> bit 2
          Value *rot = vsplat(b.CreateAnd(b.CreateSub(c64(2), jj), c64(31)));
          Value *h = word(c64(64 * k4));
          Value *hb = b.CreateIntrinsic(Intrinsic::fshl, {vi(i32, 16)}, {h, h, rot});
          ops[size_t(k4)] = b.CreateOr(ops[size_t(k4)], b.CreateAnd(hb, bytes(0x04040404)));
        }
      }
      Value *sw[2], *ml[2] = {nullptr, nullptr};
      for (int hf = 0; hf < 2; ++hf) {
        Value *byte = b.CreateAdd(b.CreateMul(b.CreateAnd(jj, c64(1)), c64(2)), c64(hf));
        Value *sh = vsplat(b.CreateMul(byte, c64(8)));
        Value *sc = b.CreateAnd(b.CreateLShr(sWord, sh), bytes(0xFF));
        if (q3) {
          sw[hf] = b.CreateFMul(d, b.CreateSIToFP(b.CreateSub(sc, splat(16, c32(32))), vf(16)));
          continue;
        }
        sw[hf] = b.CreateFMul(d, b.CreateUIToFP(b.CreateAnd(sc, bytes(0x0F)), vf(16)));
        ml[hf] = b.CreateFMul(dmin, b.CreateUIToFP(shr(sc, 4), vf(16)));
      }
      f(jj, ops, sw[0], ml[0], sw[1], ml[1]);
    };
    if (unroll) {
      for (int jj = 0; jj < 8; ++jj)
        block(c64(jj), S[jj / 2]);
      return;
    }
    loop(c64(0), c64(8), 1, [&](Value *jj) {
      Value *w = b.CreateLShr(jj, c64(1));
      Value *sWord = b.CreateSelect(b.CreateICmpEQ(w, c64(0)), S[0],
                     b.CreateSelect(b.CreateICmpEQ(w, c64(1)), S[1],
                     b.CreateSelect(b.CreateICmpEQ(w, c64(2)), S[2], S[3])));
      block(jj, sWord);
    }, "q23b");
  }

  /// Prefetch of the unit at `at`, 4 Q4_0 blocks ahead in its group's stream: ~5% at 2 threads
  /// over the hardware prefetcher alone (Q4_0 4096 x 14336, DRAM-resident; a unit ahead made
  /// Q4_K 10% slower); no fault past the end.
  void prefetchC16(Value *at) {
    const int64_t ahead = 4 * 16 * 18;
    for (int64_t off = 0; off < c16UnitBytes(); off += 64)
      b.CreateIntrinsic(Intrinsic::prefetch, {ptr}, {gepB(at, c64(ahead + off)), b.getInt32(0),
                                                     b.getInt32(3), b.getInt32(1)});
  }
  /// gemv of the 32-block types with one x row (m0; more rows: c16GemvRowsLoop), channels
  /// [n0, n0 + 16 NG), from the re-laid-out weights: the 8 dot products of a block as two
  /// chains (vpdpbusd's latency would bound one).
  void c16GemvTile(Value *mb, Value *m0, Value *n0, int NG) {
    const int MR = 1, chains = 2;
    const bool mins = hasMins(), zp = zeroPoint8() != 0;
    std::vector<std::vector<AllocaInst *>> acc(MR, std::vector<AllocaInst *>(NG)), macc = acc;
    for (int i = 0; i < MR; ++i)
      for (int g = 0; g < NG; ++g) {
        acc[i][g] = slot(vf(16), "acc");
        store(Constant::getNullValue(vf(16)), acc[i][g], 4);
        if (mins) {
          macc[i][g] = slot(vf(16), "macc");
          store(Constant::getNullValue(vf(16)), macc[i][g], 4);
        }
      }
    std::vector<Value *> xi(MR);
    for (int i = 0; i < MR; ++i)
      xi[i] = b.CreateAdd(b.CreateSub(m0, mb), c64(i));
    Value *g0 = b.CreateUDiv(n0, c64(16));
    Function *dp = Intrinsic::getDeclaration(&M_, Intrinsic::x86_avx512_vpdpbusd_512);
    loop(c64(0), c64(nUnits()), 1, [&](Value *u) {
      for (int g = 0; g < NG; ++g) {
        Value *at = c16Unit(b.CreateAdd(g0, c64(g)), u);
        prefetchC16(at);
        c16Blocks(at, [&](Value *j, std::vector<Value *> &ops, Value *sw, Value *ml, Value *,
                          Value *) {
          Value *blk = b.CreateAdd(b.CreateMul(u, c64(blocksPerUnit())), j);
          for (int i = 0; i < MR; ++i) {
            Value *xq = xqAt(xi[i], blk);
            Value *dx = splat(16, load(f32, blockDataAt(0, xi[i], blk), 4));
            std::vector<Value *> ia(chains, Constant::getNullValue(vi(i32, 16)));
            if (zp)
              ia[0] = splat(16, load(i32, blockDataAt(1, xi[i], blk), 4));
            for (int k4 = 0; k4 < 8; ++k4) {
              Value *xb = splat(16, load(i32, gepB(xq, c64(4 * k4)), 1));
              ia[size_t(k4 % chains)] = b.CreateCall(dp, {ia[size_t(k4 % chains)], ops[size_t(k4)], xb});
            }
            Value *sum = chains == 2 ? b.CreateAdd(ia[0], ia[1]) : ia[0];
            store(fma(b.CreateSIToFP(sum, vf(16)), b.CreateFMul(sw, dx), load(vf(16), acc[i][g], 4)),
                  acc[i][g], 4);
            if (mins) {
              Value *sx = splat(16, load(f32, blockDataAt(2, xi[i], blk), 4));
              store(fma(ml, sx, load(vf(16), macc[i][g], 4)), macc[i][g], 4);
            }
          }
        });
      }
    }, "cu");
    storeLaneTiles(acc, mins ? &macc : nullptr, m0, n0);
  }

  /// gemv, K-quants with 1..8 x rows, the 32-block types with 2..8 (decode; an MoE expert's
  /// few tokens): each block is decoded once (unrolled) and a run-time loop over the rows
  /// multiplies it, the rows' accumulators on the stack. One-row tiles decoded every block once
  /// per row (Mixtral MoE at 16 tokens, ~4 rows an expert: Q4_K at 41% of the bandwidth, 70%
  /// now), and a 2-row unrolled tile took compile time over 50 ms; with one row this is as fast
  /// as the one-row tile was. A row's arithmetic does not depend on the rows beside it.
  void c16GemvRowsLoop(Value *mb, Value *mEnd, Value *n0, int NG) {
    const bool mins = hasMins(), zp = zeroPoint8() != 0;
    Value *rows = b.CreateSub(mEnd, mb);
    AllocaInst *accs = slot(ArrayType::get(vf(16), uint64_t(2 * kGemvMaxM * NG)), "accs");
    // row i, group g: the accumulator, then (mins) the min accumulator kGemvMaxM * NG further
    auto at = [&](Value *i, int g, bool minAcc) {
      Value *idx = b.CreateAdd(b.CreateMul(i, c64(NG)), c64(g + (minAcc ? kGemvMaxM * NG : 0)));
      return b.CreateInBoundsGEP(vf(16), accs, idx);
    };
    Value *zero = Constant::getNullValue(vf(16));
    loop(c64(0), rows, 1, [&](Value *i) {
      for (int g = 0; g < NG; ++g) {
        store(zero, at(i, g, false), 4);
        store(zero, at(i, g, true), 4);
      }
    }, "gz");
    Value *g0 = b.CreateUDiv(n0, c64(16));
    Function *dp = Intrinsic::getDeclaration(&M_, Intrinsic::x86_avx512_vpdpbusd_512);
    loop(c64(0), c64(nUnits()), 1, [&](Value *u) {
      for (int g = 0; g < NG; ++g) {
        Value *unit = c16Unit(b.CreateAdd(g0, c64(g)), u);
        prefetchC16(unit);
        c16Blocks(unit, [&](Value *j, std::vector<Value *> &ops, Value *sw, Value *ml, Value *sw2,
                            Value *ml2) {
          Value *blk = b.CreateAdd(b.CreateMul(u, c64(blocksPerUnit())), j);
          const int halves = sw2 ? 2 : 1, perHalf = 8 / halves;
          loop(c64(0), rows, 1, [&](Value *i) {
            Value *xq = xqAt(i, blk);
            Value *dx = splat(16, load(f32, blockDataAt(0, i, blk), 4));
            Value *r = load(vf(16), at(i, g, false), 4);
            for (int hf = 0; hf < halves; ++hf) {
              Value *ia = zp ? splat(16, load(i32, gepB(blockDataAt(1, i, blk), c64(4 * hf)), 4))
                             : Constant::getNullValue(vi(i32, 16));
              for (int k4 = hf * perHalf; k4 < (hf + 1) * perHalf; ++k4) {
                Value *xb = splat(16, load(i32, gepB(xq, c64(4 * k4)), 1));
                ia = b.CreateCall(dp, {ia, ops[size_t(k4)], xb});
              }
              r = fma(b.CreateSIToFP(ia, vf(16)), b.CreateFMul(hf ? sw2 : sw, dx), r);
            }
            store(r, at(i, g, false), 4);
            if (mins) {
              Value *m = load(vf(16), at(i, g, true), 4);
              if (ml2) // Q2_K: a min per half, times dx sum(xq) of the half
                for (int hf = 0; hf < 2; ++hf) {
                  Value *sx = load(f32, gepB(blockDataAt(1, i, blk), c64(4 * hf)), 4);
                  m = fma(hf ? ml2 : ml, splat(16, sx), m);
                }
              else
                m = fma(ml, splat(16, load(f32, blockDataAt(2, i, blk), 4)), m);
              store(m, at(i, g, true), 4);
            }
          }, "gr");
        }, true);
      }
    }, "cu");
    loop(c64(0), rows, 1, [&](Value *i) {
      for (int g = 0; g < NG; ++g) {
        Value *r = load(vf(16), at(i, g, false), 4);
        if (mins)
          r = b.CreateFSub(r, load(vf(16), at(i, g, true), 4));
        Value *yi = b.CreateAdd(b.CreateMul(b.CreateAdd(mb, i), c64(s_.n)),
                                b.CreateAdd(n0, c64(16 * g)));
        store(r, gep(f32, Y, yi), 4);
      }
    }, "gs");
  }

  /// gemm: the wide panel of channels [n0, n0 + 32) from the re-laid-out weights (vector moves
  /// only; the row layout's fill transposes through scalar stores).
  void fillWidePanelC16(Value *n0) {
    Value *g0 = b.CreateUDiv(n0, c64(16));
    loop(c64(0), c64(nUnits()), 1, [&](Value *u) {
      for (int v = 0; v < 2; ++v)
        c16Blocks(c16Unit(b.CreateAdd(g0, c64(v)), u), [&](Value *j, std::vector<Value *> &ops, Value *sw,
                                                           Value *ml, Value *sw2, Value *ml2) {
          Value *blk = b.CreateAdd(b.CreateMul(u, c64(blocksPerUnit())), j);
          for (int k4 = 0; k4 < 8; ++k4)
            store(ops[size_t(k4)], widePanel(blk, k4 * 128 + v * 64), 4);
          store(sw, widePanel(blk, 1024 + v * 64), 4);
          if (sw2) // Q6_K / Q3_K / Q2_K: the scale of each 16-element half (nHalves)
            store(sw2, widePanel(blk, 1024 + 128 + v * 64), 4);
          if (ml)
            store(ml, widePanel(blk, minOff(0) + v * 64), 4);
          if (ml2) // Q2_K: the min of each half (minSlots)
            store(ml2, widePanel(blk, minOff(1) + v * 64), 4);
        });
    }, "cf");
  }

  void emitRowsKInt8() {
    const bool panel = s_.mclass == MClass::Gemm;
    if (s_.packing() == Packing::Channels16) {
      loop(c64(0), Mrows, qRows(), [&](Value *mb) {
        Value *mbEnd = b.CreateAdd(mb, c64(qRows()));
        Value *mEnd = b.CreateSelect(b.CreateICmpSLT(mbEnd, Mrows), mbEnd, Mrows);
        quantizeRows(mb, mEnd);
        if (panel) { // N % 32 == 0: wide tiles only
          loop(NB, NE, kWideN, [&](Value *n0) {
            fillWidePanelC16(n0);
            mTiles(mb, mEnd, [&](Value *m0, int MR) { wideTile(mb, m0, MR, n0); }, kWideMR);
          }, "nw");
          return;
        }
        // 32-blocks (Q4_0 ...): 4 groups a tile (a block is 8 dot products a group: more groups,
        // more chains); Q2_K .. Q5_K: 2 (two streams: Q4_K one decoded at ~13 GB/s a core, two
        // at ~15), Q6_K 1 (KernelSpec::gemvThreadAlign); one x row by the unrolled tile, more by
        // the row loop (c16GemvRowsLoop).
        const int NG = int(s_.gemvThreadAlign() / 16);
        Value *n = loop(NB, b.CreateSub(NE, c64(16 * NG - 1)), 16 * NG, [&](Value *n0) {
          if (kQuant())
            return c16GemvRowsLoop(mb, mEnd, n0, NG);
          // 32-blocks: one row by the 2-chain tile (the row loop decoded ~5% slower), more by
          // the row loop (Mixtral MoE at 16 tokens: Q4_0 +6-16% over 2-row tiles)
          BasicBlock *one = BasicBlock::Create(C, "row1", F), *more = BasicBlock::Create(C, "rows", F),
                     *done = BasicBlock::Create(C, "rowsdone", F);
          b.CreateCondBr(b.CreateICmpEQ(b.CreateSub(mEnd, mb), c64(1)), one, more);
          b.SetInsertPoint(one);
          c16GemvTile(mb, mb, n0, NG);
          b.CreateBr(done);
          b.SetInsertPoint(more);
          c16GemvRowsLoop(mb, mEnd, n0, NG);
          b.CreateBr(done);
          b.SetInsertPoint(done);
        }, "ng");
        if (NG == 4 && s_.n % 64) // chunks start at multiples of 64: only N's last 32 channels
          loop(n, NE, 32, [&](Value *n0) {
            c16GemvRowsLoop(mb, mEnd, n0, 2);
          }, "n32");
      }, "mb");
      return;
    }
    loop(c64(0), Mrows, qRows(), [&](Value *mb) {
      Value *mbEnd = b.CreateAdd(mb, c64(qRows()));
      Value *mEnd = b.CreateSelect(b.CreateICmpSLT(mbEnd, Mrows), mbEnd, Mrows);
      quantizeRows(mb, mEnd);
      auto nTile = [&](Value *n0, int R) {
        if (panel && !legacyMins() && !newKQuant() && s_.layout != Layout::CtWna16_4) { // Q4_1 / Q5_1 / Q2_K / Q3_K / Q5_K / CT tails: the register tile (min terms, zeros)
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
          mTiles(mb, mEnd, [&](Value *m0, int MR) { wideTile(mb, m0, MR, n0); }, kWideMR);
        }, "nw");
      // Narrower tiles only for what N's tail needs (chunks start at multiples of the tile).
      // The K-quant gemv kernels take 2 rows a tile: half the code (compile time), the same
      // bytes per output.
      const int R = !panel && kQuant() ? 2 : int(kRowsNR);
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
    Value *off = nullptr; ///< NPU: the added antiquant offset (f32 vector), null when absent
  };
  bool npu() const { return s_.layout == Layout::NpuW4 || s_.layout == Layout::NpuW8; }
  ColGroup colGroup(Value *g, Value *n, int W) {
    // Channels16 (int8 activations): Marlin's scales and zeros are in channel order (repacked
    // as GPTQ's), the NPU's codes unsigned: their zero is 2^(b-1) - offset (an integer, checked
    // by the cpu executor).
    if (s_.layout == Layout::Marlin && !colsPacked())
      return marlinGroup(g, n, W);
    if (npu() && !colsPacked())
      return npuGroup(g, n, W);
    ColGroup cg;
    const int64_t N = s_.n;
    Value *at = b.CreateAdd(b.CreateMul(g, c64(N)), n);
    cg.s = loadScaleVec(P[2], at, W);
    if (npu()) {
      cg.z = splat(W, c32(symZero()));
      if (s_.zeroPoint)
        cg.z = b.CreateSub(cg.z, b.CreateFPToSI(loadScaleVec(P[1], at, W), vi(i32, W)));
    } else if ((s_.layout == Layout::Awq4 || s_.zeroPoint) && (s_.bits == 2 || s_.bits == 3)) {
      cg.z = streamCodes(b.CreateMul(g, c64(N * s_.bits / 32)), n, W);
      if (s_.gptqV1)
        cg.z = b.CreateAdd(cg.z, splat(W, c32(1)));
    } else if (s_.layout == Layout::Awq4 || s_.zeroPoint) {
      // qzeros [G', N/pf]: words of channels n .. n+W; AWQ interleaved, GPTQ sequential.
      const int64_t pw = codesPerWord();
      Value *wIdx = b.CreateAdd(b.CreateMul(g, c64(N / pw)), b.CreateUDiv(n, c64(pw)));
      Value *words = load(vi(i32, int(W / pw)), gep(i32, P[1], wIdx), 1);
      cg.z = s_.bits == 4 ? unpackCols(words, W, s_.layout == Layout::Awq4)
                          : unpackColsBits(words, W, s_.layout == Layout::Awq4);
      if (s_.layout == Layout::Gptq4 && s_.gptqV1)
        cg.z = b.CreateAdd(cg.z, splat(W, c32(1)));
    } else {
      cg.z = splat(W, c32(symZero()));
    }
    return cg;
  }
  /// GPTQ 2 / 3-bit qzeros: <W x i32> codes of channels first .. first+W of the row starting at
  /// word rowWord (codec::streamGet; 3-bit codes straddle words). The W codes span at most 3
  /// words from the one holding the first bit; reads are clamped to the qzeros tensor.
  Value *streamCodes(Value *rowWord, Value *first, int W) {
    const int64_t N = s_.n, lastWord = (s_.k + s_.group - 1) / s_.group * (N * s_.bits / 32) - 1;
    Value *bit0 = b.CreateMul(first, c64(s_.bits));
    Value *w0 = b.CreateAdd(rowWord, b.CreateLShr(bit0, c64(5)));
    Value *ob = b.CreateTrunc(b.CreateAnd(bit0, c64(31)), i32);
    std::vector<Value *> words;
    for (int j = 0; j < 3; ++j) {
      Value *at = b.CreateAdd(w0, c64(j));
      at = b.CreateSelect(b.CreateICmpSGT(at, c64(lastWord)), c64(lastWord), at);
      words.push_back(b.CreateZExt(load(i32, gep(i32, P[1], at), 4), i64));
    }
    // pairs[j] = word j | word j+1 << 32, selected per lane by the lane's word index.
    Value *p0 = splat(W, b.CreateOr(words[0], b.CreateShl(words[1], c64(32))));
    Value *p1 = splat(W, b.CreateOr(words[1], b.CreateShl(words[2], c64(32))));
    std::vector<int32_t> lanesBits;
    for (int l = 0; l < W; ++l)
      lanesBits.push_back(s_.bits * l);
    Value *rel = b.CreateAdd(splat(W, ob), constVecI32(lanesBits));
    Value *widx = b.CreateLShr(rel, splat(W, c32(5)));
    Value *off = b.CreateZExt(b.CreateAnd(rel, splat(W, c32(31))), vi(i64, W));
    Value *pair = b.CreateSelect(b.CreateICmpEQ(widx, splat(W, c32(0))), p0, p1);
    Value *code = b.CreateTrunc(b.CreateLShr(pair, off), vi(i32, W));
    return b.CreateAnd(code, splat(W, c32(int32_t(codeMask()))));
  }
  /// 8-bit (AWQ: byte i of a word holds channel 4c + [0, 2, 1, 3][i], its own inverse; GPTQ:
  /// sequential) and 2-bit: <W/pf x i32> words packed along N -> <W x i32> codes.
  static constexpr int kAwqByte[4] = {0, 2, 1, 3};
  Value *unpackColsBits(Value *words, int W, bool awq) {
    const int pw = codesPerWord();
    std::vector<int> mask;
    std::vector<int32_t> shifts;
    for (int l = 0; l < W; ++l) {
      mask.push_back(l / pw);
      shifts.push_back(s_.bits * (awq ? kAwqByte[l % pw] : l % pw));
    }
    Value *v = b.CreateShuffleVector(words, mask);
    return b.CreateAnd(b.CreateLShr(v, constVecI32(shifts)), splat(W, c32(int32_t(codeMask()))));
  }
  /// <W/8 x i32> words packed along N -> <W x i32> codes in channel order.
  static constexpr int kAwqNibble[8] = {0, 4, 1, 5, 2, 6, 3, 7};
  Value *unpackCols(Value *words, int W, bool awq) {
    const int *kRev = kAwqNibble;
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
    if (s_.layout == Layout::NpuW4 || s_.layout == Layout::NpuW8) { // signed codes: (c + off) * s
      Value *c = b.CreateSIToFP(codes, vf(W));
      return b.CreateFMul(cg.off ? b.CreateFAdd(c, cg.off) : c, cg.s);
    }
    return b.CreateFMul(b.CreateSIToFP(b.CreateSub(codes, cg.z), vf(W)), cg.s);
  }

  // ---- Marlin and NPU layouts (ColsN) -----------------------------------------------------------
  // Marlin (FORMATS.md §4, schemes/marlin/codec.h): the closed forms of weightSlot / scaleColumn /
  // zeroSlot are evaluated lane by lane on the vector of channels n = n0 + l, and the words they
  // name are gathered. One gather of W words serves 4 k (a word holds k = 2j, 2j+1, 2j+8, 2j+9 of
  // a 16-row k-tile: 2 channels each for 4-bit, 1 for 8-bit).
  Value *laneVec(int W) {
    std::vector<int32_t> l;
    for (int i = 0; i < W; ++i)
      l.push_back(i);
    return constVecI32(l);
  }
  Value *gatherI32(Value *base, Value *idx, int W) {
    Value *ptrs = b.CreateInBoundsGEP(i32, base, b.CreateSExt(idx, vi(i64, W)));
    return b.CreateMaskedGather(vi(i32, W), ptrs, Align(4));
  }
  Value *gatherScale(Value *base, Value *idx, int W) {
    Value *ptrs = b.CreateInBoundsGEP(i8, base, b.CreateMul(b.CreateSExt(idx, vi(i64, W)),
                                                            splat(W, c64(elemBytes(s_.scaleElem)))));
    switch (s_.scaleElem) {
    case ElemKind::F32:
      return b.CreateMaskedGather(vf(W), ptrs, Align(1));
    case ElemKind::BF16: {
      Value *h = b.CreateMaskedGather(vi(i16, W), ptrs, Align(1));
      return b.CreateBitCast(b.CreateShl(b.CreateZExt(h, vi(i32, W)), splat(W, c32(16))), vf(W));
    }
    default:
      return b.CreateFPExt(b.CreateMaskedGather(vi(f16, W), ptrs, Align(1)), vf(W));
    }
  }
  static int64_t elemBytes(ElemKind e) { return e == ElemKind::F32 ? 4 : 2; }
  /// Channels n0 + l (l < W) as an i32 vector (N < 2^31 for every layout here).
  Value *chanVec(Value *n0, int W) {
    return b.CreateAdd(splat(W, b.CreateTrunc(n0, i32)), laneVec(W));
  }
  Value *vshr(Value *v, int sh) { return b.CreateLShr(v, splat(cast<FixedVectorType>(v->getType())->getNumElements(), c32(sh))); }
  Value *vand(Value *v, int m) { return b.CreateAnd(v, splat(cast<FixedVectorType>(v->getType())->getNumElements(), c32(m))); }
  Value *vmul(Value *v, int m) { return b.CreateMul(v, splat(cast<FixedVectorType>(v->getType())->getNumElements(), c32(m))); }
  Value *vadd(Value *v, Value *c) { return b.CreateAdd(v, splat(cast<FixedVectorType>(v->getType())->getNumElements(), c)); }

  ColGroup marlinGroup(Value *g, Value *n0, int W) {
    ColGroup cg;
    const int64_t N = s_.n;
    Value *n = chanVec(n0, W);
    Value *g32 = b.CreateTrunc(g, i32);
    // scaleColumn: grouped (G < K) an 8x8 transpose of each 64-column chunk, else the 32-perm.
    Value *col;
    if (s_.group < s_.k) {
      Value *o = vand(n, 63);
      col = b.CreateAdd(vmul(vshr(n, 6), 64), b.CreateAdd(vmul(vand(o, 7), 8), vshr(o, 3)));
    } else {
      Value *o = vand(n, 31);
      col = b.CreateAdd(vmul(vshr(n, 5), 32),
                        b.CreateAdd(b.CreateAdd(vmul(vshr(vand(o, 7), 1), 8), vmul(vshr(o, 3), 2)),
                                    vand(o, 1)));
    }
    cg.s = gatherScale(P[2], vadd(col, b.CreateMul(g32, c32(int32_t(N)))), W);
    if (!s_.zeroPoint) {
      cg.z = splat(W, c32(1 << (s_.bits - 1))); // uint4b8 / uint8b128
      return cg;
    }
    // zeroSlot: 4-bit word (n/64)*8 + n%8, nibble [0,4,1,5,2,6,3,7][(n%64)/8] = (i%2)*4 + i/2;
    // 8-bit word (n/64)*16 + 2(n%8) + (n%64)/32, byte [0,2,1,3][((n%64)/8)%4] = (i%2)*2 + i/2.
    Value *o = vand(n, 63), *word, *slotI;
    if (s_.bits == 4) {
      word = b.CreateAdd(vmul(vshr(n, 6), 8), vand(n, 7));
      Value *i = vshr(o, 3);
      slotI = b.CreateAdd(vmul(vand(i, 1), 4), vshr(i, 1));
    } else {
      word = b.CreateAdd(b.CreateAdd(vmul(vshr(n, 6), 16), vmul(vand(n, 7), 2)), vshr(o, 5));
      Value *i = vand(vshr(o, 3), 3);
      slotI = b.CreateAdd(vmul(vand(i, 1), 2), vshr(i, 1));
    }
    Value *words = gatherI32(P[1], vadd(word, b.CreateMul(g32, c32(int32_t(N * s_.bits / 32)))), W);
    cg.z = vand(b.CreateLShr(words, vmul(slotI, s_.bits)), (1 << s_.bits) - 1);
    return cg;
  }

  ColGroup npuGroup(Value *g, Value *n, int W) {
    ColGroup cg;
    Value *idx = b.CreateAdd(b.CreateMul(g, c64(s_.n)), n);
    cg.s = loadScaleVec(P[2], idx, W); // antiquant_offset has the scale's element type
    if (s_.zeroPoint)
      cg.off = loadScaleVec(P[1], idx, W);
    return cg;
  }

  /// Marlin: walks the 16-row k-tiles; per tile, j < 4 and channel vector one gather of the
  /// words holding k = 16 kt + 2j + {0, 1, 8, 9}, then per k one shift and mask.
  void colsKMarlin(const std::vector<Value *> &ns, int W,
                   const std::function<void(Value *, std::vector<Value *> &)> &body) {
    const int NV = int(ns.size());
    const int64_t K = s_.k, G = s_.group, cols = s_.n * 16 / (32 / s_.bits);
    const int bits = s_.bits;
    std::vector<Value *> nv(NV);
    for (int v = 0; v < NV; ++v)
      nv[v] = chanVec(ns[v], W);
    // j is a run-time loop (the shifts depend only on d: 2j + d stays below 8 for d < 2), which
    // keeps the unrolled body (and the compile time) 4x smaller.
    auto tile = [&](Value *kt, const std::vector<ColGroup> *fixed) {
      Value *rowBase = b.CreateTrunc(b.CreateMul(kt, c64(cols)), i32);
      loop(c64(0), c64(4), 1, [&](Value *j) {
        Value *j32 = b.CreateTrunc(j, i32);
        std::vector<Value *> words(NV);
        for (int v = 0; v < NV; ++v) {
          Value *n = nv[v], *word;
          // weightSlot: lane = (n%8)*4 + j, warp = (n%64)/16.
          Value *lane = b.CreateAdd(vmul(vand(n, 7), 4), splat(W, j32));
          if (bits == 4)
            word = b.CreateAdd(b.CreateAdd(vmul(vshr(n, 6), 128), vmul(lane, 4)),
                               vshr(vand(n, 63), 4));
          else
            word = b.CreateAdd(b.CreateAdd(vmul(vshr(n, 6), 256), vmul(lane, 8)),
                               b.CreateAdd(vmul(vshr(vand(n, 63), 4), 2), vshr(vand(n, 15), 3)));
          words[v] = gatherI32(P[0], vadd(word, rowBase), W);
        }
        // k within the tile: 2j + d, d = 0, 1, 8, 9 = (i % 2) + 8 (i / 2). act_order: a run-time
        // loop over i, as each k gathers its own group's scales (unrolled: 85 ms to compile).
        auto atD = [&](Value *i) {
          Value *d = b.CreateAdd(b.CreateAnd(i, c64(1)), b.CreateShl(b.CreateLShr(i, c64(1)), c64(3)));
          Value *k = b.CreateAdd(b.CreateAdd(b.CreateMul(kt, c64(16)), b.CreateMul(j, c64(2))), d);
          Value *dHi = b.CreateTrunc(b.CreateLShr(i, c64(1)), i32);
          Value *dOdd = b.CreateTrunc(b.CreateAnd(i, c64(1)), i32);
          std::vector<ColGroup> perK;
          if (!fixed) { // act_order: the (sorted) group of this k
            Value *g = b.CreateSExt(load(i32, gep(i32, P[3], k), 1), i64);
            for (int v = 0; v < NV; ++v)
              perK.push_back(colGroup(g, ns[v], W));
          }
          const std::vector<ColGroup> &cg = fixed ? *fixed : perK;
          std::vector<Value *> w(NV);
          for (int v = 0; v < NV; ++v) {
            Value *sh;
            if (bits == 4) // slot = (k%16)/8 + 2((n%16)/8) + 4(k%2)
              sh = vmul(b.CreateAdd(vmul(vshr(vand(nv[v], 15), 3), 2),
                                    splat(W, b.CreateAdd(dHi, b.CreateMul(dOdd, c32(4))))), 4);
            else // slot = (k%16)/8 + 2(k%2)
              sh = splat(W, b.CreateMul(b.CreateAdd(dHi, b.CreateMul(dOdd, c32(2))), c32(8)));
            Value *codes = vand(b.CreateLShr(words[v], sh), (1 << bits) - 1);
            w[v] = colWeights(codes, cg[v], W);
          }
          body(k, w);
        };
        if (fixed)
          for (int i = 0; i < 4; ++i)
            atD(c64(i));
        else
          loop(c64(0), c64(4), 1, atD, "d");
      }, "j");
    };
    if (s_.gIdx) {
      loop(c64(0), c64(K / 16), 1, [&](Value *kt) { tile(kt, nullptr); }, "kt");
      return;
    }
    loop(c64(0), c64(K / G), 1, [&](Value *g) {
      std::vector<ColGroup> cg;
      for (int v = 0; v < NV; ++v)
        cg.push_back(colGroup(g, ns[v], W));
      loop(b.CreateMul(g, c64(G / 16)), b.CreateMul(b.CreateAdd(g, c64(1)), c64(G / 16)), 1,
           [&](Value *kt) { tile(kt, &cg); }, "kt");
    }, "g");
  }

  /// NPU: weight [K, N/8] int4 (natural nibble order, two's complement) or [K, N] int8; the
  /// group's scale / offset rows are contiguous along N.
  void colsKNpu(const std::vector<Value *> &ns, int W,
                const std::function<void(Value *, std::vector<Value *> &)> &body) {
    const int NV = int(ns.size());
    const int64_t N = s_.n, K = s_.k, G = s_.group;
    loop(c64(0), c64(K / G), 1, [&](Value *g) {
      std::vector<ColGroup> cg;
      for (int v = 0; v < NV; ++v)
        cg.push_back(colGroup(g, ns[v], W));
      loop(b.CreateMul(g, c64(G)), b.CreateMul(b.CreateAdd(g, c64(1)), c64(G)), 1, [&](Value *k) {
        std::vector<Value *> w(NV);
        for (int v = 0; v < NV; ++v) {
          Value *codes;
          if (s_.layout == Layout::NpuW4) {
            Value *wIdx = b.CreateAdd(b.CreateMul(k, c64(N / 8)), b.CreateUDiv(ns[v], c64(8)));
            Value *u = unpackCols(load(vi(i32, W / 8), gep(i32, P[0], wIdx), 1), W, false);
            codes = b.CreateSub(b.CreateXor(u, splat(W, c32(8))), splat(W, c32(8))); // int4
          } else {
            Value *q = load(vi(i8, W), gepB(P[0], b.CreateAdd(b.CreateMul(k, c64(N)), ns[v])), 1);
            codes = b.CreateSExt(q, vi(i32, W));
          }
          w[v] = colWeights(codes, cg[v], W);
        }
        body(k, w);
      }, "k");
    }, "g");
  }

  /// Column of x that pairs with k: Marlin act_order reads x through perm (repacked row k holds
  /// original row perm[k]); else k.
  Value *xIdx(Value *k) {
    if (s_.layout == Layout::Marlin && s_.gIdx)
      return b.CreateSExt(load(i32, gep(i32, P[4], k), 1), i64);
    return k;
  }

  /// Walks K for channels n0 + v*W (v < NV), calling body(k, weight vectors) for every k.
  void colsK(Value *n0, int NV, int W, const std::function<void(Value *, std::vector<Value *> &)> &body) {
    const int64_t N = s_.n, K = s_.k, G = s_.group;
    std::vector<Value *> ns(NV);
    for (int v = 0; v < NV; ++v)
      ns[v] = b.CreateAdd(n0, c64(int64_t(v) * W));
    if (s_.layout == Layout::Marlin)
      return colsKMarlin(ns, W, body);
    if (s_.layout == Layout::NpuW4 || s_.layout == Layout::NpuW8)
      return colsKNpu(ns, W, body);
    if (s_.layout == Layout::Awq4) {
      loop(c64(0), c64(K / G), 1, [&](Value *g) {
        std::vector<ColGroup> cg;
        for (int v = 0; v < NV; ++v)
          cg.push_back(colGroup(g, ns[v], W));
        loop(b.CreateMul(g, c64(G)), b.CreateMul(b.CreateAdd(g, c64(1)), c64(G)), 1, [&](Value *k) {
          std::vector<Value *> w(NV);
          for (int v = 0; v < NV; ++v) {
            const int64_t pw = codesPerWord();
            Value *wIdx = b.CreateAdd(b.CreateMul(k, c64(N / pw)), b.CreateUDiv(ns[v], c64(pw)));
            Value *words = load(vi(i32, int(W / pw)), gep(i32, P[0], wIdx), 1);
            w[v] = colWeights(s_.bits == 4 ? unpackCols(words, W, true) : unpackColsBits(words, W, true),
                              cg[v], W);
          }
          body(k, w);
        }, "k");
      }, "g");
      return;
    }
    // GPTQ: qweight [K*b/32, N]: a unit of U = 32/b codes along K is one word row (2/4/8-bit);
    // 3-bit: U = 32 codes in 3 rows, codes 10 and 21 straddling rows (codec::streamGet).
    const int64_t U = gptqUnitK(), UR = U * s_.bits / 32;
    auto wordRow = [&](Value *kw, std::vector<std::vector<Value *>> &words) {
      for (int v = 0; v < NV; ++v)
        for (int64_t r = 0; r < UR; ++r)
          words[v].push_back(load(vi(i32, W), gep(i32, P[0], b.CreateAdd(
              b.CreateMul(b.CreateAdd(b.CreateMul(kw, c64(UR)), c64(r)), c64(N)), ns[v])), 1));
    };
    auto codesAt = [&](const std::vector<Value *> &words, int j) {
      const int bit = s_.bits * j, r = bit / 32, off = bit % 32;
      Value *v = b.CreateLShr(words[r], splat(W, c32(off)));
      if (off + s_.bits > 32)
        v = b.CreateOr(v, b.CreateShl(words[r + 1], splat(W, c32(32 - off))));
      return b.CreateAnd(v, splat(W, c32(int32_t(codeMask()))));
    };
    auto groupOfK = [&](Value *k) {
      return s_.gIdx ? b.CreateSExt(load(i32, gep(i32, P[3], k), 1), i64) : b.CreateUDiv(k, c64(G));
    };
    if (s_.bits == 2 || s_.bits == 3) {
      // 2 / 3-bit: one k per iteration, its bit offset in the column's stream at run time
      // (unrolling a 16 / 32-code unit made 4-8x larger kernels: compile time).
      auto codeAtK = [&](Value *k, std::vector<Value *> &codes) {
        Value *bit = b.CreateMul(k, c64(s_.bits));
        Value *r = b.CreateLShr(bit, c64(5));
        Value *off = b.CreateTrunc(b.CreateAnd(bit, c64(31)), i32);
        Value *straddles = b.CreateICmpUGT(b.CreateAdd(off, c32(s_.bits)), c32(32));
        Value *r1 = b.CreateSelect(straddles, b.CreateAdd(r, c64(1)), r); // never past qweight
        Value *offHi = b.CreateAnd(b.CreateSub(c32(32), off), c32(31));
        for (int v = 0; v < NV; ++v) {
          Value *lo = load(vi(i32, W), gep(i32, P[0], b.CreateAdd(b.CreateMul(r, c64(N)), ns[v])), 1);
          Value *hi = load(vi(i32, W), gep(i32, P[0], b.CreateAdd(b.CreateMul(r1, c64(N)), ns[v])), 1);
          Value *code = b.CreateLShr(lo, splat(W, off));
          code = b.CreateOr(code, b.CreateSelect(straddles, b.CreateShl(hi, splat(W, offHi)),
                                                 Constant::getNullValue(vi(i32, W))));
          codes[v] = b.CreateAnd(code, splat(W, c32(int32_t(codeMask()))));
        }
      };
      if (!s_.gIdx) { // groups in order (the last one short when K % G): zeros / scales per group
        loop(c64(0), c64((K + G - 1) / G), 1, [&](Value *g) {
          std::vector<ColGroup> cg;
          for (int v = 0; v < NV; ++v)
            cg.push_back(colGroup(g, ns[v], W));
          Value *kEnd = b.CreateMul(b.CreateAdd(g, c64(1)), c64(G));
          kEnd = b.CreateSelect(b.CreateICmpSLT(kEnd, c64(K)), kEnd, c64(K));
          loop(b.CreateMul(g, c64(G)), kEnd, 1, [&](Value *k) {
            std::vector<Value *> codes(NV), w(NV);
            codeAtK(k, codes);
            for (int v = 0; v < NV; ++v)
              w[v] = colWeights(codes[v], cg[v], W);
            body(k, w);
          }, "k");
        }, "g");
        return;
      }
      loop(c64(0), c64(K), 1, [&](Value *k) { // g_idx: the group of every k
        Value *g = groupOfK(k);
        std::vector<Value *> codes(NV), w(NV);
        codeAtK(k, codes);
        for (int v = 0; v < NV; ++v)
          w[v] = colWeights(codes[v], colGroup(g, ns[v], W), W);
        body(k, w);
      }, "k");
      return;
    }
    if (!s_.gIdx && G % U == 0) {
      auto groupRange = [&](Value *g, Value *kwBegin, Value *kwEnd) {
        std::vector<ColGroup> cg;
        for (int v = 0; v < NV; ++v)
          cg.push_back(colGroup(g, ns[v], W));
        loop(kwBegin, kwEnd, 1, [&](Value *kw) {
          std::vector<std::vector<Value *>> words(NV);
          wordRow(kw, words);
          for (int j = 0; j < U; ++j) {
            std::vector<Value *> w(NV);
            for (int v = 0; v < NV; ++v)
              w[v] = colWeights(codesAt(words[v], j), cg[v], W);
            body(b.CreateAdd(b.CreateMul(kw, c64(U)), c64(j)), w);
          }
        }, "kw");
      };
      loop(c64(0), c64(K / G), 1, [&](Value *g) {
        groupRange(g, b.CreateMul(g, c64(G / U)), b.CreateMul(b.CreateAdd(g, c64(1)), c64(G / U)));
      }, "g");
      if (K % G)
        groupRange(c64(K / G), c64(K / G * G / U), c64(K / U));
      return;
    }
    // Generic: the group of every k (g_idx, or groups not aligned to the U codes of a unit).
    loop(c64(0), c64(K / U), 1, [&](Value *kw) {
      std::vector<std::vector<Value *>> words(NV);
      wordRow(kw, words);
      for (int j = 0; j < U; ++j) {
        Value *k = b.CreateAdd(b.CreateMul(kw, c64(U)), c64(j));
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
      Value *xk = xIdx(k);
      for (int i = 0; i < MR; ++i) {
        Value *xb = splat(W, load(f32, gep(f32, xRow[i], xk), 4));
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
      Value *xk = xIdx(k);
      for (int i = 0; i < MR; ++i) {
        Value *xb = splat(W, load(f32, gep(f32, xRow[i], xk), 4));
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
      if (W > 8 && s_.n % W >= 8)
        n = loop(n, b.CreateSub(NE, c64(7)), 8, [&](Value *n0) { nTile(n0, 1, 8); }, "n8");
      if (s_.n % 8 && s_.layout != Layout::NpuW8) // AWQ / GPTQ 8-bit: N is a multiple of 4 only
        loop(n, NE, 4, [&](Value *n0) { nTile(n0, 1, 4); }, "n4t");
      else if (s_.n % 8) // NPU int8: any N
        loop(n, NE, 1, [&](Value *n0) { nTile(n0, 1, 1); }, "nt");
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
      if (W > 8 && s_.n % W >= 8)
        n = loop(n, b.CreateSub(NE, c64(7)), 8, [&](Value *n0) { nTile(n0, 8); }, "n8");
      if (s_.n % 8 && s_.layout != Layout::NpuW8) // AWQ / GPTQ 8-bit: N is a multiple of 4 only
        loop(n, NE, 4, [&](Value *n0) { nTile(n0, 4); }, "n4t");
      else if (s_.n % 8) // NPU int8: any N
        loop(n, NE, 1, [&](Value *n0) { nTile(n0, 1); }, "nt");
    }, "mb");
  }

  // ---- ColsN (AWQ / GPTQ 4-bit) with int8 activations ------------------------------------------
  // Lanes are output channels (16 a vector, like the wide GGUF gemm tile), so there is no
  // horizontal sum. gemv turns the packed words into vpdpbusd operands in registers; gemm builds
  // them once per m-block into a panel (fillColsPanel). Per 32-block of K (inside one group, G % 32 == 0) and 16 channels: 8 int32 code words, word j
  // = 4 codes of each channel, paired with bytes 4j .. 4j+3 of the block's xq. quantizeRows
  // stores xq per 8 as [x0 x2 x4 x6 x1 x3 x5 x7], so a GPTQ word's even nibbles
  // (w & 0x0F0F0F0F) and odd nibbles ((w >> 4) & 0x0F0F0F0F) are operands as they stand; AWQ's
  // words (8 channels of one k) are transposed across 8 k rows by byte permutes. The zero point is folded into the
  // start value: z * (-sum xq) (exact int32), then 8 vpdpbusd give sum (c - z) xq exactly, one
  // conversion and one FMA with s * dx per block and 16 channels.

  /// <W x T> -> <16 x T> (zero lanes W..15).
  Value *widen16(Value *v, int W) {
    if (W == 16)
      return v;
    std::vector<int> idx;
    for (int l = 0; l < 16; ++l)
      idx.push_back(l < W ? l : W);
    return b.CreateShuffleVector(v, Constant::getNullValue(v->getType()), idx);
  }

  /// The 8 code words (<16 x i32>, lanes = channels n .. n+W) of 32-block blk.
  bool colsPacked() const { return s_.packing() == Packing::Channels16; }
  /// Packing::Channels16 qweight: the bits x 16 GPTQ-oriented words (4 for 4-bit, 8 for 8-bit)
  /// of block blk, channels n..n+15.
  Value *colsPackedAt(Value *blk, Value *n) {
    return gep(i32, P[0], b.CreateMul(b.CreateAdd(b.CreateMul(b.CreateUDiv(n, c64(16)), c64(nBlk())), blk),
                                      c64(16 * s_.bits)));
  }
  std::vector<Value *> colsInt8Codes(Value *blk, Value *n, int W) {
    const int64_t N = s_.n;
    std::vector<Value *> words;
    Value *mask = splat(16, c32(0x0F0F0F0F));
    if (colsPacked()) { // W = 16 (N % 16 == 0)
      Value *at = colsPackedAt(blk, n);
      if (s_.bits == 8) { // word j: k = 32 blk + 4j .. +3 as bytes, an operand as it stands
        for (int j = 0; j < 8; ++j)
          words.push_back(load(vi(i32, 16), gep(i32, at, c64(16 * j)), 4));
        return words;
      }
      for (int r = 0; r < 4; ++r) {
        Value *w = load(vi(i32, 16), gep(i32, at, c64(16 * r)), 4);
        words.push_back(b.CreateAnd(w, mask));
        words.push_back(b.CreateAnd(b.CreateLShr(w, splat(16, c32(4))), mask));
      }
      return words;
    }
    if (s_.bits == 8 && s_.layout == Layout::Gptq4) {
      // qweight [K/4, N]: row 8 blk + j holds k = 32 blk + 4j .. +3 of each channel as bytes,
      // an operand as it stands (xq in natural order for 8-bit).
      for (int j = 0; j < 8; ++j) {
        Value *kw = b.CreateAdd(b.CreateMul(blk, c64(8)), c64(j));
        words.push_back(widen16(load(vi(i32, W), gep(i32, P[0], b.CreateAdd(b.CreateMul(kw, c64(N)), n)), 1), W));
      }
      return words;
    }
    if (s_.bits == 8) {
      // AWQ 8-bit: qweight [K, N/4], byte [0, 2, 1, 3][c % 4] of word c / 4 is channel c. Word j
      // of channel c = its bytes in k rows 4j .. 4j+3: the 4 rows' W bytes, one byte permute.
      for (int j = 0; j < 8; ++j) {
        std::vector<Value *> rows;
        for (int p = 0; p < 4; ++p) {
          Value *k = b.CreateAdd(b.CreateMul(blk, c64(32)), c64(4 * j + p));
          rows.push_back(load(vi(i32, W / 4), gep(i32, P[0], b.CreateAdd(b.CreateMul(k, c64(N / 4)),
                                                                          b.CreateUDiv(n, c64(4)))), 1));
        }
        Value *bytes = b.CreateBitCast(concat(concat(rows[0], rows[1]), concat(rows[2], rows[3])), vi(i8, 4 * W));
        std::vector<int> idx;
        for (int c = 0; c < W; ++c)
          for (int p = 0; p < 4; ++p)
            idx.push_back(p * W + c / 4 * 4 + kAwqByte[c % 4]);
        words.push_back(widen16(b.CreateBitCast(b.CreateShuffleVector(bytes, idx), vi(i32, W)), W));
      }
      return words;
    }
    if (s_.layout == Layout::Gptq4) {
      for (int r = 0; r < 4; ++r) { // qweight [K/8, N]: row kw holds k = 8kw .. 8kw+7
        Value *kw = b.CreateAdd(b.CreateMul(blk, c64(4)), c64(r));
        Value *w = widen16(load(vi(i32, W), gep(i32, P[0], b.CreateAdd(b.CreateMul(kw, c64(N)), n)), 1), W);
        words.push_back(b.CreateAnd(w, mask));
        words.push_back(b.CreateAnd(b.CreateLShr(w, splat(16, c32(4))), mask));
      }
      return words;
    }
    // AWQ: qweight [K, N/8]; channel c of a word is its nibble [0,4,1,5,2,6,3,7][c % 8]: byte
    // nib / 2, low or high half (unpackCols).
    const int WW = W / 8; // words per k row
    for (int r = 0; r < 4; ++r) {
      // the 8 k rows' words of channels n .. n+W, joined as a balanced tree of concats
      std::vector<Value *> rows;
      for (int t = 0; t < 8; ++t) {
        Value *k = b.CreateAdd(b.CreateMul(blk, c64(32)), c64(8 * r + t));
        rows.push_back(load(vi(i32, WW), gep(i32, P[0], b.CreateAdd(b.CreateMul(k, c64(N / 8)),
                                                                     b.CreateUDiv(n, c64(8)))), 1));
      }
      while (rows.size() > 1) {
        std::vector<Value *> next;
        for (size_t q = 0; q < rows.size(); q += 2)
          next.push_back(concat(rows[q], rows[q + 1]));
        rows = next;
      }
      Value *bytes = b.CreateBitCast(rows[0], vi(i8, 32 * WW));
      Value *lo = b.CreateAnd(bytes, splatI8(32 * WW, 15));
      Value *hi = b.CreateLShr(bytes, splatI8(32 * WW, 4));
      for (int odd = 0; odd < 2; ++odd) { // word A: k rows 0, 2, 4, 6; word B: 1, 3, 5, 7
        std::vector<int> idx;
        for (int c = 0; c < W; ++c)
          for (int j = 0; j < 4; ++j) {
            int t = 2 * j + odd, nib = kAwqNibble[c % 8]; // channel c's nibble in its word
            idx.push_back((nib % 2 ? 32 * WW : 0) + t * 4 * WW + c / 8 * 4 + nib / 2);
          }
        words.push_back(widen16(b.CreateBitCast(b.CreateShuffleVector(lo, hi, idx), vi(i32, W)), W));
      }
    }
    return words;
  }

  // gemm: per m-block and n-tile the operands are built once into a panel after the quantized x
  // block, [block][word j][vector v] x 64 bytes, and every m-tile reads them from there (the
  // unpacking, AWQ's transposition above all, is not redone per 4 rows).
  Value *colsPanelAt(Value *blk, int j, int v, int NV) {
    return gepB(Scratch, b.CreateAdd(c64(panelOffset() + (int64_t(j) * NV + v) * 64),
                                     b.CreateMul(blk, c64(8 * NV * 64))));
  }
  void fillColsPanel(Value *n0, int NV, int W) {
    loop(c64(0), c64(nBlk()), 1, [&](Value *blk) {
      std::vector<std::vector<Value *>> codes(NV);
      for (int v = 0; v < NV; ++v) {
        if (codes[v].empty())
          colsInt8CodesFor(blk, n0, v, NV, W, codes);
        for (int j = 0; j < 8; ++j)
          store(codes[v][j], colsPanelAt(blk, j, v, NV), 4);
      }
    }, "cp");
  }

  /// AWQ, 32 channels n .. n+31 at once (twice the bytes per load and per permute of the 16-wide
  /// unpack): the 8 k rows' 16-byte words are joined as [rows 0 2 4 6 | rows 1 3 5 7], so each
  /// half (one zmm) holds the rows of one operand parity and one vpermt2b of its low / high
  /// nibbles gives the operand of 16 channels. Returns the 8 words of channels n.. then of n+16...
  std::vector<Value *> awqCodes32(Value *blk, Value *n) {
    const int64_t N = s_.n;
    std::vector<Value *> lo16, hi16; // words of channels n.. / n+16.., j = 0..7
    for (int r = 0; r < 4; ++r) {
      std::vector<Value *> rows;
      for (int t : {0, 2, 4, 6, 1, 3, 5, 7}) {
        Value *k = b.CreateAdd(b.CreateMul(blk, c64(32)), c64(8 * r + t));
        rows.push_back(load(vi(i32, 4), gep(i32, P[0], b.CreateAdd(b.CreateMul(k, c64(N / 8)),
                                                                    b.CreateUDiv(n, c64(8)))), 1));
      }
      std::vector<Value *> halves[2] = {{rows[0], rows[1], rows[2], rows[3]},
                                        {rows[4], rows[5], rows[6], rows[7]}};
      for (int odd = 0; odd < 2; ++odd) {
        std::vector<Value *> &h = halves[odd];
        Value *v = concat(concat(h[0], h[1]), concat(h[2], h[3])); // <16 x i32>, row p at 4p
        Value *bytes = b.CreateBitCast(v, vi(i8, 64));
        Value *lo = b.CreateAnd(bytes, splatI8(64, 15)), *hi = b.CreateLShr(bytes, splatI8(64, 4));
        for (int half = 0; half < 2; ++half) {
          std::vector<int> idx;
          for (int c = 16 * half; c < 16 * half + 16; ++c)
            for (int p = 0; p < 4; ++p) { // row position p in this parity = k row 2p + odd
              int nib = kAwqNibble[c % 8];
              idx.push_back((nib % 2 ? 64 : 0) + p * 16 + c / 8 * 4 + nib / 2);
            }
          (half ? hi16 : lo16).push_back(b.CreateBitCast(b.CreateShuffleVector(lo, hi, idx), vi(i32, 16)));
        }
      }
    }
    lo16.insert(lo16.end(), hi16.begin(), hi16.end());
    return lo16;
  }
  /// Operand words of the NV vectors of 16 channels at n0 (codes[v][j]), 32 channels at a time
  /// for AWQ where the tile allows.
  void colsInt8CodesFor(Value *blk, Value *n0, int v, int NV, int W, std::vector<std::vector<Value *>> &codes) {
    Value *n = b.CreateAdd(n0, c64(16 * v));
    if (s_.layout == Layout::Awq4 && s_.bits == 4 && !colsPacked() && W == 16 && v + 1 < NV) {
      std::vector<Value *> w = awqCodes32(blk, n);
      codes[v].assign(w.begin(), w.begin() + 8);
      codes[v + 1].assign(w.begin() + 8, w.end());
      return;
    }
    codes[v] = colsInt8Codes(blk, n, W);
  }

  /// gemv: prefetches the tile's qweight lines kPrefetchBlocks 32-blocks ahead. The tile walks K
  /// rows that lie N/2 (AWQ) or 4N (GPTQ) bytes apart, a stride the hardware prefetchers follow
  /// poorly; past the end of K the addresses are not dereferenced (prefetches do not fault).
  static constexpr int64_t kPrefetchBlocks = 4;
  void prefetchCols(Value *blk, Value *n0, int NV, int W) {
    if (colsPacked()) { // contiguous 64 * bits-byte strips per 16 channels: the same distance
      for (int v = 0; v < NV; ++v) {
        Value *at = colsPackedAt(b.CreateAdd(blk, c64(kPrefetchBlocks)), b.CreateAdd(n0, c64(16 * v)));
        for (int64_t off = 0; off < 64 * s_.bits; off += 64)
          b.CreateIntrinsic(Intrinsic::prefetch, {ptr}, {gepB(at, c64(off)), b.getInt32(0),
                                                         b.getInt32(3), b.getInt32(1)});
      }
      return;
    }
    const int64_t N = s_.n, channels = int64_t(NV - 1) * 16 + W;
    const bool awq = s_.layout == Layout::Awq4;
    const int rows = awq ? 32 : s_.bits;    // qweight rows per 32-block
    const int64_t rowBytes = awq ? N * s_.bits / 8 : 4 * N;
    Value *colByte = awq ? b.CreateUDiv(b.CreateMul(n0, c64(s_.bits)), c64(8)) : b.CreateMul(n0, c64(4));
    const int64_t lineSpan = awq ? channels * s_.bits / 8 : channels * 4; // the tile's bytes of a row
    Value *row0 = b.CreateMul(b.CreateAdd(blk, c64(kPrefetchBlocks)), c64(rows));
    for (int r = 0; r < rows; ++r)
      for (int64_t off = 0; off < lineSpan; off += 64) {
        Value *at = b.CreateAdd(b.CreateMul(b.CreateAdd(row0, c64(r)), c64(rowBytes)),
                                b.CreateAdd(colByte, c64(off)));
        b.CreateIntrinsic(Intrinsic::prefetch, {ptr},
                          {b.CreateGEP(i8, P[0], at), b.getInt32(0), b.getInt32(3), b.getInt32(1)});
      }
  }

  /// Rows [m0, m0+MR) (scratch rows m0 - mb ...) x channels n0 + 16v (v < NV; W channels each);
  /// the operands from the panel (gemm) or unpacked here (gemv).
  void colsInt8Tile(Value *mb, Value *m0, int MR, Value *n0, int NV, int W, bool panel) {
    const int64_t K = s_.k, G = s_.group;
    std::vector<std::vector<AllocaInst *>> acc(MR, std::vector<AllocaInst *>(NV));
    for (int i = 0; i < MR; ++i)
      for (int v = 0; v < NV; ++v) {
        acc[i][v] = slot(vf(16), "acc");
        store(Constant::getNullValue(vf(16)), acc[i][v], 4);
      }
    std::vector<Value *> xi(MR), ns(NV);
    for (int i = 0; i < MR; ++i)
      xi[i] = b.CreateAdd(b.CreateSub(m0, mb), c64(i));
    for (int v = 0; v < NV; ++v)
      ns[v] = b.CreateAdd(n0, c64(16 * v));
    auto groupBlocks = [&](Value *g, Value *blkBegin, Value *blkEnd) {
      std::vector<Value *> z(NV), sc(NV);
      for (int v = 0; v < NV; ++v) {
        ColGroup cg = colGroup(g, ns[v], W);
        z[v] = widen16(cg.z, W);
        sc[v] = widen16(cg.s, W);
      }
      loop(blkBegin, blkEnd, 1, [&](Value *blk) {
        if (!panel)
          prefetchCols(blk, n0, NV, W);
        std::vector<Value *> negSum(MR), dx(MR), xq(MR);
        for (int i = 0; i < MR; ++i) {
          negSum[i] = splat(16, load(i32, blockDataAt(1, xi[i], blk), 4));
          dx[i] = splat(16, load(f32, blockDataAt(0, xi[i], blk), 4));
          xq[i] = xqAt(xi[i], blk);
        }
        if (panel) { // word-outer, as the GGUF wide tile: NV operand loads, MR x NV dot products
          std::vector<std::vector<Value *>> ia(MR, std::vector<Value *>(NV));
          for (int i = 0; i < MR; ++i)
            for (int v = 0; v < NV; ++v)
              ia[i][v] = zeroTimesSum(z[v], negSum[i]);
          for (int j = 0; j < 8; ++j) {
            std::vector<Value *> w(NV);
            for (int v = 0; v < NV; ++v)
              w[v] = load(vi(i32, 16), colsPanelAt(blk, j, v, NV), 4);
            for (int i = 0; i < MR; ++i) {
              Value *xb = splat(16, load(i32, gepB(xq[i], c64(4 * j)), 1));
              for (int v = 0; v < NV; ++v)
                ia[i][v] = dot16(ia[i][v], w[v], xb);
            }
          }
          for (int v = 0; v < NV; ++v)
            for (int i = 0; i < MR; ++i)
              store(fma(b.CreateSIToFP(ia[i][v], vf(16)), b.CreateFMul(sc[v], dx[i]),
                        load(vf(16), acc[i][v], 4)), acc[i][v], 4);
          return;
        }
        std::vector<std::vector<Value *>> codes(NV);
        for (int v = 0; v < NV; ++v) {
          if (codes[v].empty())
            colsInt8CodesFor(blk, n0, v, NV, W, codes);
          for (int i = 0; i < MR; ++i) {
            Value *ia = zeroTimesSum(z[v], negSum[i]);
            for (int j = 0; j < 8; ++j)
              ia = dot16(ia, codes[v][j], splat(16, load(i32, gepB(xq[i], c64(4 * j)), 1)));
            store(fma(b.CreateSIToFP(ia, vf(16)), b.CreateFMul(sc[v], dx[i]),
                      load(vf(16), acc[i][v], 4)), acc[i][v], 4);
          }
        }
      }, "blk");
    };
    const int64_t bpg = G / kActBlock; // blocks per group
    loop(c64(0), c64(K / G), 1, [&](Value *g) {
      groupBlocks(g, b.CreateMul(g, c64(bpg)), b.CreateMul(b.CreateAdd(g, c64(1)), c64(bpg)));
    }, "g");
    if (K % G) // GPTQ: ceil(K / G) groups, the last one short
      groupBlocks(c64(K / G), c64(K / G * bpg), c64(K / kActBlock));
    for (int i = 0; i < MR; ++i)
      for (int v = 0; v < NV; ++v) {
        Value *r = load(vf(16), acc[i][v], 4);
        if (W < 16) {
          std::vector<int> idx;
          for (int l = 0; l < W; ++l)
            idx.push_back(l);
          r = b.CreateShuffleVector(r, idx);
        }
        Value *yi = b.CreateAdd(b.CreateMul(b.CreateAdd(m0, c64(i)), c64(s_.n)), ns[v]);
        store(r, gep(f32, Y, yi), 4);
      }
  }

  void emitColsNInt8() {
    // Vectors of 16 channels a tile: AWQ 4-bit gemv on the row layout takes 128 channels, a whole
    // 64-byte line of each qweight row (K rows N/2 bytes apart: half-line tiles read every line
    // twice, from DRAM). The row layout's gemv (N % 16 != 0, a fallback) takes one x row a tile,
    // a quarter of the code of 4 (its unpacking is long: 95-130 ms to compile). The gemm takes 6
    // x rows a tile, as the GGUF wide tile (AWQ / GPTQ prefill +3 / +8% over 4, A/B).
    const int NT = int(s_.threadAlign() / 16);
    const int MR = !colsPacked() && s_.mclass == MClass::Gemv ? 1 : s_.mclass == MClass::Gemm ? 6 : 4;
    loop(c64(0), Mrows, qRows(), [&](Value *mb) {
      Value *mbEnd = b.CreateAdd(mb, c64(qRows()));
      Value *mEnd = b.CreateSelect(b.CreateICmpSLT(mbEnd, Mrows), mbEnd, Mrows);
      quantizeRows(mb, mEnd);
      const bool panel = s_.mclass == MClass::Gemm;
      auto nTile = [&](Value *n0, int NV, int W) {
        if (panel)
          fillColsPanel(n0, NV, W);
        mTiles(mb, mEnd, [&](Value *m0, int mr) { colsInt8Tile(mb, m0, mr, n0, NV, W, panel); }, MR);
      };
      // Chunks start at multiples of NT * 16 (KernelSpec::threadAlign): narrower tiles only for
      // what N's tail needs.
      Value *n = NB;
      if (s_.n >= NT * 16)
        n = loop(NB, b.CreateSub(NE, c64(NT * 16 - 1)), NT * 16,
                 [&](Value *n0) { nTile(n0, NT, 16); }, "nt");
      if (s_.n % (NT * 16) >= 16)
        n = loop(n, b.CreateSub(NE, c64(15)), 16, [&](Value *n0) { nTile(n0, 1, 16); }, "n16");
      if (s_.n % 16 >= 8)
        n = loop(n, b.CreateSub(NE, c64(7)), 8, [&](Value *n0) { nTile(n0, 1, 8); }, "n8");
      if (s_.n % 8) // 8-bit: N is a multiple of 4 only
        loop(n, NE, 4, [&](Value *n0) { nTile(n0, 1, 4); }, "n4t");
    }, "mb");
  }

  // ---- W8A8 with int8 activations (vllm-ascend W8A8_DYNAMIC) ----------------------------------
  // The scheme's own arithmetic (FORMATS.md §5.4, w8a8::quantizePerToken / matmul): per row m of
  // x (token) s_m = max|x_m| / 127, xq = roundeven(x / s_m) in [-127, 127]; the dot products of
  // xq with the int8 weights accumulate in int32 over the whole K; then y = f32(acc) * (s_m *
  // ws[n]) in f32 (two roundings after the exact acc and one in s_m * ws).
  // Sign trick: vpdpbusd multiplies unsigned bytes by signed bytes. The weights are the unsigned
  // operand biased by 128 (w ^ 0x80 = w + 128 in [0, 255]) and xq the signed one; the start
  // value holds -128 * sum(xq) of the row (computed once per row when x is quantized), so the
  // sum is sum w * xq exactly. int32 wraps modulo 2^32, and the final sum is within +-127 * 128
  // * K (K <= INT32_MAX / (127 * 128), KernelSpec::int8Capable), so it is exact whatever the
  // intermediate values. K tails: xq rows are padded with zeros to a multiple of 64 and the
  // weights' last partial 64 bytes are read with a masked load (no read past the row).
  // Scratch: qRows() rows of w8Kp() codes, then a 16-byte record per row (s_m f32, bias i32),
  // then (gemm) the wide tile's panel.
  int64_t w8Kp() const { return (s_.k + 63) / 64 * 64; }
  int64_t w8RecOff() const { return qRows() * w8Kp(); }
  int64_t w8PanelOff() const { return (w8RecOff() + qRows() * 16 + 63) / 64 * 64; }
  Value *w8Xq(Value *i) { return gepB(Scratch, b.CreateMul(i, c64(w8Kp()))); }
  /// which = 0: s_m (f32), 1: -128 * sum(xq) (i32).
  Value *w8Rec(Value *i, int which) {
    return gepB(Scratch, b.CreateAdd(c64(w8RecOff() + 4 * which), b.CreateMul(i, c64(16))));
  }

  /// Quantizes rows [mb, mEnd) of x per token into scratch rows [0, mEnd - mb).
  void w8QuantizeRows(Value *mb, Value *mEnd) {
    const int64_t K = s_.k, K16 = K / 16 * 16;
    AllocaInst *mxv = slot(vi(i32, 16), "amaxv"), *mxs = slot(i32, "amax");
    AllocaInst *sumv = slot(vi(i32, 16), "sumv"), *sums = slot(i32, "sum");
    loop(mb, mEnd, 1, [&](Value *m) {
      Value *i = b.CreateSub(m, mb);
      Value *xr = gep(f32, X, b.CreateMul(m, c64(K)));
      Value *xq = w8Xq(i);
      // max |x| through the bit patterns (|x| orders like its bits as unsigned)
      store(Constant::getNullValue(vi(i32, 16)), mxv, 4);
      store(c32(0), mxs, 4);
      loop(c64(0), c64(K16), 16, [&](Value *k) {
        Value *bits = b.CreateAnd(b.CreateBitCast(load(vf(16), gep(f32, xr, k), 4), vi(i32, 16)),
                                  splat(16, c32(0x7fffffff)));
        store(b.CreateBinaryIntrinsic(Intrinsic::umax, load(vi(i32, 16), mxv, 4), bits), mxv, 4);
      }, "w8max");
      if (K % 16)
        loop(c64(K16), c64(K), 1, [&](Value *k) {
          Value *bits = b.CreateAnd(b.CreateBitCast(load(f32, gep(f32, xr, k), 4), i32), c32(0x7fffffff));
          store(b.CreateBinaryIntrinsic(Intrinsic::umax, load(i32, mxs, 4), bits), mxs, 4);
        }, "w8maxt");
      Value *amaxBits = b.CreateBinaryIntrinsic(
          Intrinsic::umax, b.CreateIntMaxReduce(load(vi(i32, 16), mxv, 4), false), load(i32, mxs, 4));
      Value *amax = b.CreateBitCast(amaxBits, f32);
      Value *dx = b.CreateFDiv(amax, ConstantFP::get(f32, 127.0));
      // an all-zero row: codes 0 (and s_m = 0), as quantizePerToken
      Value *div = b.CreateSelect(b.CreateFCmpOGT(amax, ConstantFP::get(f32, 0.0)), dx,
                                  ConstantFP::get(f32, 1.0));
      if (K % 64) // the padding codes are 0
        store(Constant::getNullValue(vi(i8, 64)), gepB(xq, c64(w8Kp() - 64)), 1);
      store(Constant::getNullValue(vi(i32, 16)), sumv, 4);
      store(c32(0), sums, 4);
      loop(c64(0), c64(K16), 16, [&](Value *k) {
        Value *v = load(vf(16), gep(f32, xr, k), 4);
        Value *r = b.CreateUnaryIntrinsic(Intrinsic::roundeven, b.CreateFDiv(v, splat(16, div)));
        Value *q = b.CreateFPToSI(r, vi(i32, 16));
        store(b.CreateTrunc(q, vi(i8, 16)), gepB(xq, k), 1);
        store(b.CreateAdd(load(vi(i32, 16), sumv, 4), q), sumv, 4);
      }, "w8q");
      if (K % 16)
        loop(c64(K16), c64(K), 1, [&](Value *k) {
          Value *r = b.CreateUnaryIntrinsic(Intrinsic::roundeven,
                                            b.CreateFDiv(load(f32, gep(f32, xr, k), 4), div));
          Value *q = b.CreateFPToSI(r, i32);
          store(b.CreateTrunc(q, i8), gepB(xq, k), 1);
          store(b.CreateAdd(load(i32, sums, 4), q), sums, 4);
        }, "w8qt");
      Value *isum = b.CreateAdd(b.CreateAddReduce(load(vi(i32, 16), sumv, 4)), load(i32, sums, 4));
      store(dx, w8Rec(i, 0), 4);
      store(b.CreateMul(isum, c32(-128)), w8Rec(i, 1), 4);
    }, "w8m");
  }

  /// The 64 weight bytes of row rb at byte k, as unsigned codes w + 128; `tail`: only the first
  /// K % 64 (a masked load; the rest 0, multiplied by the zero padding of xq).
  Value *w8Codes(Value *rb, Value *k, bool tail) {
    Value *p = gepB(rb, k);
    Value *w;
    if (tail) {
      std::vector<Constant *> mask;
      for (int l = 0; l < 64; ++l)
        mask.push_back(ConstantInt::getBool(C, l < s_.k % 64));
      w = b.CreateMaskedLoad(vi(i8, 64), p, Align(1), ConstantVector::get(mask),
                             Constant::getNullValue(vi(i8, 64)));
    } else {
      w = load(vi(i8, 64), p, 1);
    }
    return b.CreateXor(w, splatI8(64, 0x80));
  }

  /// y[m, n] = f32(acc) * (s_m * ws[n]): the one scaling of the exact int32 sum (every tile).
  Value *w8Scale(Value *acc, Value *sx, Value *ws, int w) {
    Type *t = w == 1 ? static_cast<Type *>(f32) : vf(w);
    Value *sc = w == 1 ? b.CreateFMul(sx, ws) : b.CreateFMul(splat(w, sx), ws);
    return b.CreateFMul(b.CreateSIToFP(acc, t), sc);
  }

  /// gemv (and the gemm's N tails): rows [m0, m0+MR) x channels [n0, n0+R), weights from their
  /// rows in registers: per 64 k and output one vpdpbusd into <16 x i32>, reduced at the end.
  void w8GemvTile(Value *mb, Value *m0, int MR, Value *n0, int R) {
    const int64_t K64 = s_.k / 64 * 64;
    std::vector<std::vector<AllocaInst *>> acc(MR, std::vector<AllocaInst *>(R));
    std::vector<Value *> rowB(R), xq(MR), xi(MR);
    for (int r = 0; r < R; ++r)
      rowB[r] = rowBase(b.CreateAdd(n0, c64(r)));
    for (int i = 0; i < MR; ++i) {
      xi[i] = b.CreateAdd(b.CreateSub(m0, mb), c64(i));
      xq[i] = w8Xq(xi[i]);
      Value *bias = b.CreateInsertElement(Constant::getNullValue(vi(i32, 16)),
                                          load(i32, w8Rec(xi[i], 1), 4), uint64_t(0));
      for (int r = 0; r < R; ++r) {
        acc[i][r] = slot(vi(i32, 16), "iacc");
        store(bias, acc[i][r], 4);
      }
    }
    auto step = [&](Value *k, bool tail) {
      std::vector<Value *> w(R);
      for (int r = 0; r < R; ++r)
        w[r] = w8Codes(rowB[r], k, tail);
      for (int i = 0; i < MR; ++i) {
        Value *x = load(vi(i8, 64), gepB(xq[i], k), 1);
        for (int r = 0; r < R; ++r)
          store(dot16(load(vi(i32, 16), acc[i][r], 4), w[r], x), acc[i][r], 4);
      }
    };
    loop(c64(0), c64(K64), 64, [&](Value *k) { step(k, false); }, "w8k");
    if (s_.k % 64)
      step(c64(K64), true);
    for (int r = 0; r < R; ++r) {
      Value *n = b.CreateAdd(n0, c64(r));
      Value *ws = loadScaleScalar(P[1], n);
      for (int i = 0; i < MR; ++i) {
        Value *a = b.CreateAddReduce(load(vi(i32, 16), acc[i][r], 4));
        Value *yi = b.CreateAdd(b.CreateMul(b.CreateAdd(m0, c64(i)), c64(s_.n)), n);
        store(w8Scale(a, load(f32, w8Rec(xi[i], 0), 4), ws, 1), gep(f32, Y, yi), 4);
      }
    }
  }

  // gemm, wide tiles of kWideN = 32 channels: per m-block the tile's weights are re-laid out once
  // in scratch as [k4][vector v][16 channels] int32 words (4 codes of a channel each, + 128), a
  // 16 x 16 transposition of int32 words per 16 channels and 64 k; the micro-kernel (4 x rows x 2
  // vectors) broadcasts 4 bytes of xq per k4 into vpdpbusd: lanes are channels, the int32 sums
  // run over the whole K, no horizontal sum.
  Value *w8Panel(Value *k4, Value *v) {
    return gepB(Scratch, b.CreateAdd(c64(w8PanelOff()),
                                     b.CreateMul(b.CreateAdd(b.CreateMul(k4, c64(2)), v), c64(64))));
  }
  /// 16 x 16 transposition of int32 words: rows[r] lane c -> result[c] lane r (swaps of the
  /// off-diagonal h x h blocks for h = 8, 4, 2, 1; two-source shuffles).
  std::vector<Value *> transpose16(std::vector<Value *> rows) {
    for (int h = 8; h >= 1; h /= 2) {
      std::vector<int> lo, hi;
      for (int c = 0; c < 16; ++c) {
        lo.push_back(c & h ? 16 + c - h : c);
        hi.push_back(c & h ? 16 + c : c + h);
      }
      std::vector<Value *> next(16);
      for (int r = 0; r < 16; ++r)
        if (!(r & h)) {
          next[r] = b.CreateShuffleVector(rows[r], rows[r + h], lo);
          next[r + h] = b.CreateShuffleVector(rows[r], rows[r + h], hi);
        }
      rows = next;
    }
    return rows;
  }
  void w8FillPanel(Value *n0) {
    const int64_t K64 = s_.k / 64 * 64;
    loop(c64(0), c64(2), 1, [&](Value *v) {
      std::vector<Value *> rb(16);
      for (int j = 0; j < 16; ++j)
        rb[j] = rowBase(b.CreateAdd(n0, b.CreateAdd(b.CreateMul(v, c64(16)), c64(j))));
      auto chunk = [&](Value *k, bool tail) {
        std::vector<Value *> rows(16);
        for (int j = 0; j < 16; ++j)
          rows[j] = b.CreateBitCast(w8Codes(rb[j], k, tail), vi(i32, 16));
        std::vector<Value *> cols = transpose16(rows);
        Value *k4 = b.CreateUDiv(k, c64(4));
        for (int t = 0; t < 16; ++t)
          store(cols[t], w8Panel(b.CreateAdd(k4, c64(t)), v), 4);
      };
      loop(c64(0), c64(K64), 64, [&](Value *k) { chunk(k, false); }, "w8pf");
      if (s_.k % 64)
        chunk(c64(K64), true);
    }, "w8pv");
  }
  void w8WideTile(Value *mb, Value *m0, int MR, Value *n0) {
    const int NV = int(kWideN / 16), U = 4; // k4 words an iteration
    std::vector<std::vector<AllocaInst *>> acc(MR, std::vector<AllocaInst *>(NV));
    std::vector<Value *> xq(MR), xi(MR);
    for (int i = 0; i < MR; ++i) {
      xi[i] = b.CreateAdd(b.CreateSub(m0, mb), c64(i));
      xq[i] = w8Xq(xi[i]);
      Value *bias = splat(16, load(i32, w8Rec(xi[i], 1), 4));
      for (int v = 0; v < NV; ++v) {
        acc[i][v] = slot(vi(i32, 16), "iacc");
        store(bias, acc[i][v], 4);
      }
    }
    loop(c64(0), c64(w8Kp() / 4), U, [&](Value *q) {
      for (int u = 0; u < U; ++u) {
        Value *k4 = b.CreateAdd(q, c64(u));
        std::vector<Value *> w(NV);
        for (int v = 0; v < NV; ++v)
          w[v] = load(vi(i32, 16), w8Panel(k4, c64(v)), 4);
        for (int i = 0; i < MR; ++i) {
          Value *xb = splat(16, load(i32, gepB(xq[i], b.CreateMul(k4, c64(4))), 1));
          for (int v = 0; v < NV; ++v)
            store(dot16(load(vi(i32, 16), acc[i][v], 4), w[v], xb), acc[i][v], 4);
        }
      }
    }, "w8wk");
    for (int v = 0; v < NV; ++v) {
      Value *n = b.CreateAdd(n0, c64(16 * v));
      Value *ws = loadScaleVec(P[1], n, 16);
      for (int i = 0; i < MR; ++i) {
        Value *yi = b.CreateAdd(b.CreateMul(b.CreateAdd(m0, c64(i)), c64(s_.n)), n);
        store(w8Scale(load(vi(i32, 16), acc[i][v], 4), load(f32, w8Rec(xi[i], 0), 4), ws, 16),
              gep(f32, Y, yi), 4);
      }
    }
  }

  void emitW8a8Int8() {
    const bool gemm = s_.mclass == MClass::Gemm;
    loop(c64(0), Mrows, qRows(), [&](Value *mb) {
      Value *mbEnd = b.CreateAdd(mb, c64(qRows()));
      Value *mEnd = b.CreateSelect(b.CreateICmpSLT(mbEnd, Mrows), mbEnd, Mrows);
      w8QuantizeRows(mb, mEnd);
      auto nTile = [&](Value *n0, int R) {
        mTiles(mb, mEnd, [&](Value *m0, int MR) { w8GemvTile(mb, m0, MR, n0, R); });
      };
      Value *n = NB;
      if (gemm && s_.n >= kWideN)
        n = loop(NB, b.CreateSub(NE, c64(kWideN - 1)), kWideN, [&](Value *n0) {
          w8FillPanel(n0);
          mTiles(mb, mEnd, [&](Value *m0, int MR) { w8WideTile(mb, m0, MR, n0); });
        }, "nw");
      // Chunks start at multiples of the tile (KernelSpec::threadAlign): narrower tiles only for
      // what N's tail needs.
      if (!gemm || s_.n % kWideN >= kRowsNR)
        n = loop(n, b.CreateSub(NE, c64(kRowsNR - 1)), kRowsNR,
                 [&](Value *n0) { nTile(n0, kRowsNR); }, "n4");
      if (s_.n % kRowsNR)
        loop(n, NE, 1, [&](Value *n0) { nTile(n0, 1); }, "n1");
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
  Value *P[5] = {nullptr, nullptr, nullptr, nullptr, nullptr};
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
    for (const auto &f : llvm::sys::getHostCPUFeatures()) {
      if (!feats.empty())
        feats += ',';
      feats += f.second ? '+' : '-';
      feats += f.first();
    }
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
  for (unsigned i = 0; i < slots.size() && i < 5; ++i)
    if (!slots[i].empty())
      P[i] = load(ptr, gep(ptr, parts, c64(i)), 8);
  if (s_.act == Activations::Int8 && s_.layout == Layout::W8a8)
    emitW8a8Int8();
  else if (s_.act == Activations::Int8 && s_.family() == Family::ColsN)
    emitColsNInt8();
  else if (s_.act == Activations::Int8)
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
