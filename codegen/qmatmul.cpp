#include "codegen/qmatmul.h"

#include <algorithm>
#include <vector>

#include "codegen/kernel_emitter.h"

namespace qlc::codegen {

llvm::Error runQMatmul(KernelSpec spec, const uint8_t *const *parts, const float *x, int64_t m,
                       float *y, ThreadPool *pool, KernelCache &cache) {
  if (m <= 0)
    return llvm::Error::success();
  spec.mclass = mClassFor(m);
  auto k = cache.get(spec);
  if (!k)
    return k.takeError();
  KernelFn fn = (*k)->fn;
  const int64_t n = spec.n;
  // Chunks of N aligned to the kernel's tile so that threads never split a tile.
  const int64_t align = spec.threadAlign();
  unsigned threads = pool ? pool->size() : 1;
  // Tiny problems are not worth waking the pool.
  if (double(n) * double(spec.k) * double(m) < 65536.0)
    threads = 1;
  int64_t tiles = (n + align - 1) / align;
  // Int8 gemm kernels quantize their x block per chunk: one chunk a thread (the work per tile is
  // uniform); otherwise 4 a thread, for balance.
  const int64_t perThread = spec.act == Activations::Int8 && spec.mclass == MClass::Gemm ? 1 : 4;
  int64_t chunks = std::min<int64_t>(tiles, threads == 1 ? 1 : perThread * int64_t(threads));
  int64_t tilesPerChunk = (tiles + chunks - 1) / chunks;
  chunks = (tiles + tilesPerChunk - 1) / tilesPerChunk;
  const int64_t scratch = spec.scratchFloats();
  // Int8 gemm with whole m-blocks for every thread: split M instead (in m-blocks, so each output
  // sees the same blocking and instructions as single-threaded). Each m-block's x is then
  // quantized once, not once per thread, and the panel fills are the same in number.
  const int64_t mBlock = spec.int8RowsPerBlock(), mBlocks = (m + mBlock - 1) / mBlock;
  if (spec.act == Activations::Int8 && spec.mclass == MClass::Gemm && threads > 1 && pool &&
      mBlocks >= int64_t(threads)) {
    const int64_t perChunk = (mBlocks + threads - 1) / threads;
    const int64_t mChunks = (mBlocks + perChunk - 1) / perChunk;
    pool->parallelFor(mChunks, [&](int64_t c, unsigned) {
      thread_local std::vector<float> buf;
      if (int64_t(buf.size()) < scratch)
        buf.resize(size_t(scratch));
      const int64_t m0 = c * perChunk * mBlock, m1 = std::min(m, (c + 1) * perChunk * mBlock);
      fn(x + m0 * spec.k, m1 - m0, parts, y + m0 * n, 0, n, buf.data());
    });
    return llvm::Error::success();
  }
  auto body = [&](int64_t c, unsigned) {
    thread_local std::vector<float> buf;
    if (int64_t(buf.size()) < scratch)
      buf.resize(size_t(scratch));
    int64_t nb = c * tilesPerChunk * align, ne = std::min(n, (c + 1) * tilesPerChunk * align);
    fn(x, m, parts, y, nb, ne, scratch ? buf.data() : nullptr);
  };
  if (chunks == 1 || !pool)
    for (int64_t c = 0; c < chunks; ++c)
      body(c, 0);
  else
    pool->parallelFor(chunks, body);
  return llvm::Error::success();
}

} // namespace qlc::codegen
