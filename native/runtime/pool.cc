// Persistent worker threads: spin briefly on a generation counter for back-to-back kernels, then
// sleep on a condition variable so an idle pool costs no CPU.
#include "pool.h"

#include <immintrin.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

namespace tsf {
namespace {

struct Pool {
  std::vector<std::thread> workers;  // worker i runs tid i + 1
  std::atomic<unsigned> gen{0};
  std::atomic<int> pending{0};
  TaskFn fn = nullptr;
  void* ctx = nullptr;
  int nt = 1;
  std::mutex mu;
  std::condition_variable cv;
  std::mutex run_mu;  // one pool_run at a time (several JS threads may share the addon)
  int threads = 1;
};

Pool& pool() {
  static Pool* p = [] {
    auto* q = new Pool();  // never destroyed: workers outlive static destructors
    int n = (int)std::thread::hardware_concurrency();
    if (const char* e = std::getenv("TSFORMER_THREADS")) {
      int v = std::atoi(e);
      if (v > 0) n = v;
    }
    q->threads = n < 1 ? 1 : (n > 256 ? 256 : n);
    return q;
  }();
  return *p;
}

thread_local bool in_task = false;

void worker_main(Pool* p, int tid) {
  in_task = true;
  unsigned seen = 0;
  for (;;) {
    unsigned g = p->gen.load(std::memory_order_acquire);
    if (g == seen) {
      // Spin ~200 us before sleeping: kernels often come back to back.
      auto t0 = std::chrono::steady_clock::now();
      for (int i = 0;; ++i) {
        g = p->gen.load(std::memory_order_acquire);
        if (g != seen) break;
        _mm_pause();
        if ((i & 255) == 255 &&
            std::chrono::steady_clock::now() - t0 > std::chrono::microseconds(200)) {
          std::unique_lock<std::mutex> lk(p->mu);
          p->cv.wait(lk, [&] { return p->gen.load(std::memory_order_acquire) != seen; });
          g = p->gen.load(std::memory_order_acquire);
          break;
        }
      }
    }
    seen = g;
    if (tid < p->nt) {
      p->fn(p->ctx, tid, p->nt);
      p->pending.fetch_sub(1, std::memory_order_acq_rel);
    }
  }
}

}  // namespace

void spin_relax(int i) {
  if (i < 4096) _mm_pause();
  else std::this_thread::yield();
}

void pool_set_threads(int n) {
  Pool& p = pool();
  std::lock_guard<std::mutex> lk(p.run_mu);
  p.threads = n < 1 ? 1 : (n > 256 ? 256 : n);
}

int pool_threads() { return pool().threads; }

void pool_run(int nt, TaskFn fn, void* ctx) {
  Pool& p = pool();
  if (nt > p.threads) nt = p.threads;
  if (nt <= 1 || in_task || !p.run_mu.try_lock()) {
    fn(ctx, 0, 1);
    return;
  }
  while ((int)p.workers.size() < nt - 1) {
    int tid = (int)p.workers.size() + 1;
    p.workers.emplace_back(worker_main, &p, tid);
  }
  p.fn = fn;
  p.ctx = ctx;
  p.nt = nt;
  p.pending.store(nt - 1, std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lk(p.mu);
    p.gen.fetch_add(1, std::memory_order_release);
  }
  p.cv.notify_all();
  in_task = true;
  fn(ctx, 0, nt);
  in_task = false;
  for (int i = 0; p.pending.load(std::memory_order_acquire) != 0; ++i) spin_relax(i);
  p.run_mu.unlock();
}

void barrier_init(Barrier* b, int n) {
  b->n = n;
  b->count.store(0, std::memory_order_relaxed);
  b->gen.store(0, std::memory_order_relaxed);
}

void barrier_wait(Barrier* b) {
  if (b->n <= 1) return;
  int g = b->gen.load(std::memory_order_acquire);
  if (b->count.fetch_add(1, std::memory_order_acq_rel) == b->n - 1) {
    b->count.store(0, std::memory_order_relaxed);
    b->gen.fetch_add(1, std::memory_order_release);
    return;
  }
  for (int i = 0; b->gen.load(std::memory_order_acquire) == g; ++i) spin_relax(i);
}

}  // namespace tsf
