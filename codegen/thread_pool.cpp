#include "codegen/thread_pool.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace qlc::codegen {
namespace {

/// Waits spin (1000 pauses, ~50-100 us) before they sleep: a model's matmuls come back to back,
/// and a futex wake-up of the other thread cost ~70 us a call here (a sixth of a 4096 x 4096 gemv).
constexpr int kSpins = 1000;

template <typename Ready> bool spinUntil(Ready ready) {
  for (int i = 0; i < kSpins; ++i) {
    if (ready())
      return true;
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#else
    std::this_thread::yield();
#endif
  }
  return ready();
}

} // namespace

ThreadPool::ThreadPool(unsigned threads) {
  if (threads == 0)
    threads = std::max(1u, std::thread::hardware_concurrency());
  for (unsigned i = 1; i < threads; ++i)
    workers_.emplace_back([this, i] { workerLoop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  for (std::thread &t : workers_)
    t.join();
}

ThreadPool &ThreadPool::global() {
  static ThreadPool pool;
  return pool;
}

void ThreadPool::drain(unsigned worker) {
  for (int64_t i; (i = next_.fetch_add(1)) < count_;)
    (*fn_)(i, worker);
}

void ThreadPool::workerLoop(unsigned id) {
  uint64_t seen = 0;
  for (;;) {
    spinUntil([&] { return stop_ || generation_ != seen; });
    {
      std::unique_lock<std::mutex> l(mu_);
      wake_.wait(l, [&] { return stop_ || generation_ != seen; });
      if (stop_)
        return;
      seen = generation_;
      // A worker that wakes after the caller has claimed every index stays out: once the caller
      // has seen busy_ == 0 it returns, and the next call rewrites fn_ and count_ under mu_.
      if (next_ >= count_)
        continue;
      ++busy_;
    }
    drain(id);
    {
      std::lock_guard<std::mutex> l(mu_);
      --busy_;
    }
    done_.notify_all();
  }
}

void ThreadPool::parallelFor(int64_t count, const std::function<void(int64_t, unsigned)> &fn) {
  if (count <= 0)
    return;
  if (workers_.empty() || count == 1) {
    for (int64_t i = 0; i < count; ++i)
      fn(i, 0);
    return;
  }
  std::lock_guard<std::mutex> call(callMu_);
  {
    std::lock_guard<std::mutex> l(mu_);
    fn_ = &fn;
    count_ = count;
    next_ = 0;
    ++generation_;
  }
  wake_.notify_all();
  drain(0);
  // Every index has been claimed; wait for the workers still running theirs. A worker joins only
  // under mu_ and while indices remain, so busy_ == 0 && next_ >= count_ seen under mu_ means no
  // worker will read fn_ or count_ of this call again.
  auto finished = [&] { return busy_ == 0 && next_ >= count_; };
  spinUntil(finished);
  std::unique_lock<std::mutex> l(mu_);
  done_.wait(l, finished);
  fn_ = nullptr;
}

} // namespace qlc::codegen
