// Included by gemm_impl.h inside its per-ISA namespace (uses its V, MR, NR, lmin, cdiv, Job, Blk,
// pack_b, compute_rows and the thread-local buffers): not a standalone header.
// --- one large product on every thread with B packed once (Goto & van de Geijn 2008, sec. 6) ------
// gemm_slab packs all of op(B) for each row slab, so with two slabs B is read and packed twice (16 MB
// at 2048^3). Here the threads share each packed B block: each packs a share of its panels, waits
// until all shares are in, then multiplies its row slab by the whole block. (On the Zen 3 test machine
// this halves the B traffic without a speed change beyond noise; bench/RESULTS.md.) Two block buffers, so a thread may pack block b+1 while another still
// reads block b; two monotone counters order it (block b is packed once `packed` reaches nt*(b+1);
// its buffer is free again once `done` reaches nt*(b-1)). Each element of C sees the same k blocks
// and microkernel calls as in gemm_slab: same bits.
template <class K>
struct Coop {
  const Job<K>* g;
  typename K::Tpk* buf[2];
  long ncb, kcb;
  std::atomic<long> packed{0}, done{0};
};

inline void wait_for(const std::atomic<long>& c, long target) {
  for (int i = 0; c.load(std::memory_order_acquire) < target; ++i) spin_relax(i);
}

template <class K>
void coop_task(void* vctx, int tid, int nt) {
  Coop<K>& c = *static_cast<Coop<K>*>(vctx);
  const Job<K>& g = *c.g;
  const long pm = cdiv(g.m, MR);
  const long r0 = lmin(g.m, pm * tid / nt * MR), r1 = lmin(g.m, pm * (tid + 1) / nt * MR);
  const long mcb = mc_block(lmin(g.m, cdiv(pm, nt) * MR));
  auto* Ap = static_cast<typename K::Tpk*>(grow_bytes(
      tl_abuf, tl_acap, (long)sizeof(typename K::Tpk) * (mcb / MR + 1) * (MR * (c.kcb + 8) + kPanelPad)));
  long blk = 0;
  for (long jc = 0; jc < g.n; jc += c.ncb)
    for (long pc = 0; pc < g.k; pc += c.kcb, ++blk) {
      const Blk b = block_of(g, jc, lmin(c.ncb, g.n - jc), pc, lmin(c.kcb, g.k - pc));
      auto* Bp = c.buf[blk & 1];
      if (blk >= 2) wait_for(c.done, nt * (blk - 1));
      pack_b(g, b, b.np * tid / nt, b.np * (tid + 1) / nt, Bp);
      c.packed.fetch_add(1, std::memory_order_acq_rel);
      wait_for(c.packed, nt * (blk + 1));
      if (r0 < r1) compute_rows(g, b, r0, r1, mcb, Ap, Bp);
      c.done.fetch_add(1, std::memory_order_acq_rel);
    }
}

thread_local void* tl_coop = nullptr;  // the caller's shared B buffers
thread_local long tl_coopcap = 0;

// Used for one product split in rows whose B costs enough to pack twice: TSFORMER_GEMM_COOP sets the
// least m*n*k (0 disables; default TSF_COOP_WORK, which an ISA may set).
#ifndef TSF_COOP_WORK
#define TSF_COOP_WORK 1e9
#endif
inline double coop_min_work() {
  static const double v = [] { const char* e = std::getenv("TSFORMER_GEMM_COOP"); return e ? std::atof(e) : TSF_COOP_WORK; }();
  return v;
}

template <class K>
void run_coop(const Job<K>& g, int nt) {
  using Tpk = typename K::Tpk;
  Coop<K> c;
  c.g = &g;
  c.kcb = kblock(g.k);
  c.ncb = cdiv(cdiv(g.n, cdiv(g.n, tuned(2))), NR) * NR;
  const long half = (c.ncb / NR + 1) * (NR * (c.kcb + 8) + kPanelPad);
  Tpk* base = static_cast<Tpk*>(grow_bytes(tl_coop, tl_coopcap, (long)sizeof(Tpk) * 2 * half));
  c.buf[0] = base;
  c.buf[1] = base + half;
  pool_run(nt, coop_task<K>, &c);
}
