// Included by gemm_impl.h inside its per-ISA namespace (uses its V, MR, lmin, cdiv, Job, gemm_slab,
// scale_c, and gemm_small_impl.h's SmallJob / small_unit): not a standalone header.
// --- grouped fp32 GEMM: the experts of a mixture-of-experts layer in one call ----------------------
// G products whose shared operand is cut at row offsets (the tokens sorted by expert), as grouped
// GEMM kernels for MoE do (MegaBlocks, Gale et al. 2023, sec. 5): every (group, row slab) is a unit
// taken by whichever thread is free, each computed start to finish by one thread (gemm_slab), so
// small experts do not each pay a thread hand-off and uneven groups balance across threads.
// GROUP_ROWS: C[o_g:o_g+1] = A[o_g:o_g+1] op(B_g)      (forward x W_g^T, input gradient g W_g)
// GROUP_K:    C_g = A[o_g:o_g+1]^T B[o_g:o_g+1]         (weight gradient g_g^T x_g; k = rows of group g)
struct GroupedCtx {
  const GroupedParams* p;
  long* unit_group;  // per unit: its group and first / last row of C_g
  long* unit_r0;
  long* unit_r1;
  long* unit_c0;     // columns of a few-row group (one unit per column block), else 0 .. n
  long* unit_c1;
  long units;
  std::atomic<long> next{0};
};

// Templates (K = KF32), so that a translation unit that never calls run_grouped compiles none of it.
template <class K>
Job<K> grouped_job(const GroupedParams& p, long g) {
  const long o0 = p.offsets[g], rows = p.offsets[g + 1] - o0;
  Job<K> j;
  j.bias = nullptr; j.alpha = 1.0f; j.beta = 0.0f; j.n = p.n; j.ldc = p.ldc; j.lda = p.lda; j.ldb = p.ldb;
  if (p.mode == GROUP_ROWS) {
    j.A = p.a + o0 * p.lda; j.tA = false; j.B = p.bs[g]; j.tB = p.transB;
    j.C = p.c + o0 * p.ldc; j.m = rows; j.k = p.k;
  } else {
    j.A = p.a + o0 * p.lda; j.tA = true; j.B = p.b + o0 * p.ldb; j.tB = false;
    j.C = p.cs[g]; j.m = p.m; j.k = rows;
  }
  return j;
}

template <class K>
void grouped_task(void* vctx, int, int) {
  GroupedCtx& c = *static_cast<GroupedCtx*>(vctx);
  for (;;) {
    const long u = c.next.fetch_add(1, std::memory_order_relaxed);
    if (u >= c.units) break;
    const Job<K> j = grouped_job<K>(*c.p, c.unit_group[u]);
    if (c.p->mode == GROUP_ROWS && j.m <= kSmallDim) {  // a few tokens (decoding): B read in place, unpacked
      SmallJob s;
      s.A = j.A; s.lda = j.lda; s.tA = false; s.strideA = 0; s.B = j.B; s.ldb = j.ldb; s.tB = j.tB; s.strideB = 0;
      s.m = j.m; s.n = j.n; s.k = j.k; s.C = j.C; s.csr = j.ldc; s.csc = 1; s.strideC = 0;
      s.alpha = 1.0f; s.beta = 0.0f; s.batch = 1;
      small_unit(s, 0, c.unit_c0[u], c.unit_c1[u]);
      continue;
    }
    if (j.k == 0) scale_c(j.C + c.unit_r0[u] * j.ldc, j.ldc, c.unit_r1[u] - c.unit_r0[u], j.n, 0.0f, nullptr);
    else gemm_slab<K>(j, c.unit_r0[u], c.unit_r1[u], 0, j.n);
  }
}

template <class K>
void run_grouped(const GroupedParams& p) {
  const long G = p.groups;
  // rows of C per group, and the slab height that gives each thread ~4 units
  long total = 0;
  double work = 0;
  for (long g = 0; g < G; ++g) {
    const long rows = p.offsets[g + 1] - p.offsets[g];
    total += p.mode == GROUP_ROWS ? rows : p.m;
    work += (double)rows * p.n * (p.mode == GROUP_ROWS ? p.k : p.m);
  }
  // a second thread pays off only past ~1M multiply-adds here: below that its wake-up costs more
  // than the product, and much more when another process holds the core. Decoding's few-row groups
  // are the exception: they stream their weights from memory, which one thread alone cannot draw
  // at full bandwidth, so they are cut into column blocks and share threads from the small path's
  // threshold on (gemm_small_impl.h run_small).
  const auto few = [&](long g) { return p.mode == GROUP_ROWS && p.offsets[g + 1] - p.offsets[g] <= kSmallDim; };
  bool allFew = true;
  for (long g = 0; g < G; ++g) allFew = allFew && few(g);
  int nt = pool_threads();
  if (work < (allFew ? 131072.0 : 1048576.0)) nt = 1;
  const long slab = cdiv(lmin(total, cdiv(total, 4L * nt) > 4 * MR ? cdiv(total, 4L * nt) : 4 * MR), MR) * MR;
  const long cb = nt > 1 && p.n > 64 ? 64 : p.n;  // column block of a few-row group
  const auto unitsOf = [&](long g) {
    if (few(g)) return p.offsets[g + 1] > p.offsets[g] ? cdiv(p.n, cb) : 0L;
    return cdiv(p.mode == GROUP_ROWS ? p.offsets[g + 1] - p.offsets[g] : p.m, slab);
  };
  long units = 0;
  for (long g = 0; g < G; ++g) units += unitsOf(g);
  long* buf = static_cast<long*>(std::malloc(sizeof(long) * 5 * (units + 1)));
  GroupedCtx c;
  c.p = &p; c.units = units;
  c.unit_group = buf; c.unit_r0 = buf + units + 1; c.unit_r1 = buf + 2 * (units + 1);
  c.unit_c0 = buf + 3 * (units + 1); c.unit_c1 = buf + 4 * (units + 1);
  long u = 0;
  for (long g = 0; g < G; ++g) {
    const long rows = p.mode == GROUP_ROWS ? p.offsets[g + 1] - p.offsets[g] : p.m;
    if (few(g)) {
      for (long j = 0; j < p.n && rows > 0; j += cb, ++u) {
        c.unit_group[u] = g; c.unit_r0[u] = 0; c.unit_r1[u] = rows; c.unit_c0[u] = j; c.unit_c1[u] = lmin(p.n, j + cb);
      }
      continue;
    }
    for (long r = 0; r < rows; r += slab, ++u) {
      c.unit_group[u] = g; c.unit_r0[u] = r; c.unit_r1[u] = lmin(rows, r + slab); c.unit_c0[u] = 0; c.unit_c1[u] = p.n;
    }
  }
  if (units > 0) pool_run(nt, grouped_task<K>, &c);
  std::free(buf);
}
