// One persistent thread pool shared by every native kernel (no nested pools, no oversubscription).
// The calling (JS) thread is worker 0 and blocks until the task has run on all workers.
#pragma once
#include <atomic>

namespace tsf {

using TaskFn = void (*)(void* ctx, int tid, int nt);

// Threads used by kernels: TSFORMER_THREADS, default = hardware threads; changeable at run time.
void pool_set_threads(int n);
int pool_threads();
// Runs fn(ctx, tid, nt) for tid in [0, nt). nt is clamped to pool_threads(); when called from inside a
// pool task (or while another JS thread owns the pool) the task runs inline with nt = 1.
void pool_run(int nt, TaskFn fn, void* ctx);

// Spin-wait step i: pause, and after ~20 us give the core away, so that a machine busy with other
// processes does not leave us spinning while the thread we wait for is descheduled.
void spin_relax(int i);

// Spinning barrier for the nt members of one pool_run (sense reversal by generation counter).
struct Barrier {
  std::atomic<int> count{0};
  std::atomic<int> gen{0};
  int n = 1;
};
void barrier_init(Barrier* b, int n);
void barrier_wait(Barrier* b);

}  // namespace tsf
