// Included by flash_impl.h inside its per-ISA namespace (uses flash_vec_impl.h and pool.h): not a
// standalone header. The attention mask of a tile pair, the schedule of tiles and segments, and the
// item threading.
// --- the mask (AttentionMaskArgs; backend/mask.ts AttentionMask) ------------------------------------
enum { SKIP = 0, PARTIAL = 1, FULL = 2 };
struct Seg { long q0, k0, nq, nk, off; };

struct Mask {
  bool causal = false;
  long window = 0;
  const uint8_t* table = nullptr;
  long bs = 1, nb = 0;
  long qb0 = 0;  // the first query block the table holds (a table of the query blocks only)
  // Key position j visible to query position i. A query position below 0 (Tq > S) lies outside the
  // block table: the table does not hide anything from it (as AttentionMask.visible).
  bool visible(long i, long j) const {
    if (causal && j > i) return false;
    if (window > 0 && j <= i - window) return false;
    return !table || i < 0 || table[(i / bs - qb0) * nb + j / bs] != 0;
  }
  int tile(long i0, long i1, long j0, long j1) const {
    bool full = true;
    if (causal) {
      if (j0 > i1) return SKIP;
      if (j1 > i0) full = false;
    }
    if (window > 0) {
      if (j1 <= i0 - window) return SKIP;
      if (j0 <= i1 - window) full = false;
    }
    if (table && i1 >= 0) {
      bool any = i0 < 0, all = true;
      const long b0 = (i0 < 0 ? 0 : i0) / bs, b1 = i1 / bs, c0 = j0 / bs, c1 = j1 / bs;
      for (long qb = b0; qb <= b1; ++qb)
        for (long kb = c0; kb <= c1; ++kb) {
          if (table[(qb - qb0) * nb + kb]) any = true;
          else all = false;
        }
      if (!any) return SKIP;
      if (!all) full = false;
    }
    return full ? FULL : PARTIAL;
  }
};

// The keys j0 + [lo, hi) of j0 .. j0 + nk - 1 that the causal and window rules leave to query
// position i (a contiguous range; lo and hi never decrease as i grows).
inline void key_range(const Mask& mk, long i, long j0, long nk, long& lo, long& hi) {
  lo = 0;
  hi = nk;
  if (mk.causal && i - j0 + 1 < hi) hi = i - j0 + 1;
  if (mk.window > 0 && i - mk.window + 1 - j0 > lo) lo = i - mk.window + 1 - j0;
  if (lo > nk) lo = nk;
  if (hi < lo) hi = lo;
}

// Hides (-inf) the keys j0 .. j0 + nk - 1 that query position i cannot see: row[c * stride], c < nk.
void mask_row(const Mask& mk, long i, long j0, long nk, float* row, long stride) {
  long lo, hi;
  key_range(mk, i, j0, nk, lo, hi);
  for (long c = 0; c < lo; ++c) row[c * stride] = -kInf;
  for (long c = hi; c < nk; ++c) row[c * stride] = -kInf;
  if (!mk.table || i < 0) return;
  const uint8_t* trow = mk.table + (i / mk.bs - mk.qb0) * mk.nb;
  for (long c = lo; c < hi;) {
    const long kb = (j0 + c) / mk.bs, end = lmin(hi, (kb + 1) * mk.bs - j0);
    if (!trow[kb])
      for (; c < end; ++c) row[c * stride] = -kInf;
    else
      c = end;
  }
}

// The Ranges of one tile pair (queries i0 .., keys j0 ..) with mask status st: for a PARTIAL tile,
// keys [lo[r], hi[r]) of query row r and queries [qlo[c], qhi[c]) of key column c (rows past nq and
// columns past nk see nothing); other tiles get Ranges that cover everything, computed from nothing.
struct Span {
  int32_t lo[T], hi[T], qlo[T], qhi[T];
  Ranges queries, keys;  // per query row: its keys; per key row: its queries
  Span(const Mask& mk, int st, long i0, long nq, long j0, long nk) {
    if (st != PARTIAL) return;
    for (long r = 0; r < T; ++r) {
      long l = 0, h = 0;
      if (r < nq) key_range(mk, i0 + r, j0, nk, l, h);
      lo[r] = (int32_t)l;
      hi[r] = (int32_t)h;
    }
    // {r : lo[r] <= c < hi[r]} = [first r with hi[r] > c, first r with lo[r] > c): both monotone in c
    long rl = 0, rh = 0;
    for (long c = 0; c < T; ++c) {
      while (rl < nq && hi[rl] <= c) ++rl;
      while (rh < nq && lo[rh] <= c) ++rh;
      qlo[c] = (int32_t)(c < nk ? rl : 0);
      qhi[c] = (int32_t)(c < nk && rh > rl ? rh : qlo[c]);
    }
    queries = Ranges{lo, hi};
    keys = Ranges{qlo, qhi};
  }
  Span(const Span&) = delete;  // the Ranges point into this object
  Span& operator=(const Span&) = delete;
};

struct TileRef { long seg, t0; };

// Shape bookkeeping shared by forward and backward (segments and the tile lists; malloc'd).
struct Plan {
  const FlashParams* p;
  Mask mk;
  Seg* segs = nullptr;
  long nseg = 0;
  TileRef* tiles = nullptr;  // T-row tiles of every segment (query tiles; key tiles: same, since a
  long ntiles = 0;           // segment has nq == nk with cuSeqlens)
  TileRef* ktiles = nullptr;
  long nktiles = 0;
  long group = 1;
  explicit Plan(const FlashParams& fp) : p(&fp) {
    mk.causal = fp.causal;
    mk.window = fp.window;
    mk.table = fp.table;
    mk.bs = fp.bs < 1 ? 1 : fp.bs;
    mk.nb = (fp.S + mk.bs - 1) / mk.bs;
    mk.qb0 = fp.tqb0;
    group = fp.Hkv > 0 ? fp.H / fp.Hkv : 1;
    if (fp.cu) {
      segs = static_cast<Seg*>(std::malloc(sizeof(Seg) * (fp.ncu > 1 ? fp.ncu : 1)));
      for (long i = 1; i < fp.ncu; ++i) {
        const long n = (long)fp.cu[i] - fp.cu[i - 1];
        if (n > 0) segs[nseg++] = Seg{fp.cu[i - 1], fp.cu[i - 1], n, n, 0};
      }
    } else {
      segs = static_cast<Seg*>(std::malloc(sizeof(Seg)));
      segs[nseg++] = Seg{0, 0, fp.Tq, fp.S, fp.S - fp.Tq};
    }
    long nq = 0, nk = 0;
    for (long s = 0; s < nseg; ++s) { nq += (segs[s].nq + T - 1) / T; nk += (segs[s].nk + T - 1) / T; }
    tiles = static_cast<TileRef*>(std::malloc(sizeof(TileRef) * (nq + 1)));
    ktiles = static_cast<TileRef*>(std::malloc(sizeof(TileRef) * (nk + 1)));
    for (long s = 0; s < nseg; ++s) {
      for (long t = 0; t < segs[s].nq; t += T) tiles[ntiles++] = TileRef{s, t};
      for (long t = 0; t < segs[s].nk; t += T) ktiles[nktiles++] = TileRef{s, t};
    }
  }
  ~Plan() { std::free(segs); std::free(tiles); std::free(ktiles); }
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;
};

// Per-thread tile scratch (grown on demand, kept for the thread's lifetime).
thread_local float* tl_buf = nullptr;
thread_local long tl_cap = 0;
float* scratch(long n) {
  if (n > tl_cap) {
    std::free(tl_buf);
    tl_cap = n + 64;
    tl_buf = static_cast<float*>(std::aligned_alloc(64, sizeof(float) * ((tl_cap + 15) & ~15L)));
  }
  return tl_buf;
}

// --- threading: items 0 .. n-1 handed out dynamically (each item's result is order independent) ---
struct Run {
  long n = 0;
  long next = 0;
  void (*item)(const void* ctx, long i) = nullptr;
  const void* ctx = nullptr;
};
void run_task(void* vc, int, int) {
  Run* r = static_cast<Run*>(vc);
  for (;;) {
    const long i = __atomic_fetch_add(&r->next, 1, __ATOMIC_RELAXED);
    if (i >= r->n) break;
    r->item(r->ctx, i);
  }
}
void run_items(long n, double work, void (*item)(const void*, long), const void* ctx) {
  if (n <= 0) return;
  Run r;
  r.n = n; r.item = item; r.ctx = ctx;
  long nt = work >= 65536.0 ? pool_threads() : 1;
  if (nt > n) nt = n;
  if (nt <= 1) { run_task(&r, 0, 1); return; }
  pool_run((int)nt, run_task, &r);
}
