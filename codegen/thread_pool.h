// A small fixed thread pool for the CPU kernels: parallelFor(count, fn) runs fn(i, worker) for
// i < count on the pool's workers and the calling thread, and returns when all are done.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace qlc::codegen {

class ThreadPool {
public:
  /// `threads` = total threads including the caller; 0 = std::thread::hardware_concurrency().
  explicit ThreadPool(unsigned threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool &) = delete;
  ThreadPool &operator=(const ThreadPool &) = delete;

  /// The process-wide pool sized to the machine.
  static ThreadPool &global();
  unsigned size() const { return unsigned(workers_.size()) + 1; }

  /// Runs fn(i, worker) for every i in [0, count); worker in [0, size()). One call at a time
  /// (calls from several threads are serialised).
  void parallelFor(int64_t count, const std::function<void(int64_t, unsigned)> &fn);

private:
  void workerLoop(unsigned id);
  void drain(unsigned worker);

  std::vector<std::thread> workers_;
  std::mutex callMu_; // serialises parallelFor
  std::mutex mu_;
  std::condition_variable wake_, done_;
  // The current call; written under mu_, read by the caller and by workers counted in busy_.
  const std::function<void(int64_t, unsigned)> *fn_ = nullptr;
  int64_t count_ = 0;
  std::atomic<int64_t> next_{0};
  // Atomic so that the waits can spin on them before taking mu_; written under mu_.
  std::atomic<unsigned> busy_{0};
  std::atomic<uint64_t> generation_{0};
  std::atomic<bool> stop_{false};
};

} // namespace qlc::codegen
