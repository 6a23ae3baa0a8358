// Included by gemm_impl.h inside its per-ISA namespace (uses its V, MR, NR, lmin, cdiv, grow, Job,
// job_of and gemm_slab): not a standalone header.
// --- a long k and a small C (weight gradients: k = rows of the batch; fp32 and bf16) ----------------
// Split in rows or columns, each thread would pack the whole of the other operand, which for these
// products is a cold activation read from memory twice. Split in k instead: unit h multiplies the
// h-th half of k into its own C (the caller's C with its beta and bias, or a scratch C), and the
// halves are summed in order afterwards. The split depends on the shape only (one thread runs both
// units), so the bits do not depend on the thread count.
inline bool ksplit_shape(const GemmParams& p) {
  return p.batch == 1 && p.k >= 1024 && p.k >= 4 * (p.m > p.n ? p.m : p.n) &&
         p.m * p.n <= 512 * 512;
}
struct KSplitCtx { const GemmParams* p; float* c1; long kh; std::atomic<long> next{0}; };
template <class K>
void ksplit_task(void* vctx, int, int) {
  KSplitCtx* c = static_cast<KSplitCtx*>(vctx);
  const GemmParams& p = *c->p;
  for (;;) {
    const long u = c->next.fetch_add(1, std::memory_order_relaxed);
    if (u >= 2) break;
    Job<K> g = job_of<K>(p, 0);
    if (u == 1) {  // second half of k into the scratch C
      g.A += p.transA ? c->kh * p.lda : c->kh;
      g.B += p.transB ? c->kh : c->kh * p.ldb;
      g.C = c->c1; g.ldc = p.n; g.beta = 0.0f; g.bias = nullptr;
    }
    g.k = u == 0 ? c->kh : p.k - c->kh;
    gemm_slab<K>(g, 0, p.m, 0, p.n);
  }
}
thread_local float* tl_ksplit = nullptr;
thread_local long tl_ksplitcap = 0;
template <class K>
void run_ksplit(const GemmParams& p, int nt) {
  KSplitCtx c;
  c.p = &p;
  c.kh = cdiv(p.k / 2, 8) * 8;
  c.c1 = grow(tl_ksplit, tl_ksplitcap, p.m * p.n);
  pool_run(nt < 2 ? nt : 2, ksplit_task<K>, &c);
  for (long i = 0; i < p.m; ++i)
    for (long j = 0; j < p.n; ++j) p.c[i * p.ldc + j] += c.c1[i * p.n + j];
}
