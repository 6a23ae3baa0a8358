// The selective scan kernels of scan.h, included once per instruction set with TSF_SNS (the namespace)
// defined: plain C++ whose inner loops run over the state dimension n (`omp simd`, -fopenmp-simd), so
// GCC vectorises them for the including translation unit's ISA (the exp is exp_impl.h's, which
// vectorises; libm's does not). B and C are read transposed ([L, n] per batch row, one copy per call)
// so that those loops are contiguous.
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "runtime/pool.h"
#include "ssm/scan.h"

namespace tsf {
namespace TSF_SNS {
namespace {

#include "kernels/exp_impl.h"

inline float f_exp(float x) { return exp_cephes<float, int32_t>(x); }
inline long lmin(long a, long b) { return a < b ? a : b; }

constexpr double kParMin = 32768;  // work (b d L n) below which one thread runs the scan
constexpr long kGroup = 8;         // channels per backward task: their dB, dC partials are summed in the task

template <class T>
T* alloc(long n) { return static_cast<T*>(std::malloc(sizeof(T) * (n > 0 ? n : 1))); }

// B, C [b, n, L] -> [b, L, n]
void transpose_bc(const ScanParams& p, float* Bt, float* Ct) {
  for (long bb = 0; bb < p.b; ++bb)
    for (long k = 0; k < p.n; ++k)
      for (long t = 0; t < p.L; ++t) {
        Bt[(bb * p.L + t) * p.n + k] = p.B[(bb * p.n + k) * p.L + t];
        Ct[(bb * p.L + t) * p.n + k] = p.C[(bb * p.n + k) * p.L + t];
      }
}

// Runs f(task, tid) for tasks [0, ntasks) split into contiguous ranges, one per thread.
template <class F>
struct Job { const F* f; long ntasks; };
template <class F>
void job_run(void* v, int tid, int nt) {
  auto* j = static_cast<Job<F>*>(v);
  for (long i = j->ntasks * tid / nt, e = j->ntasks * (tid + 1) / nt; i < e; ++i) (*j->f)(i, tid);
}
template <class F>
void run_tasks(long ntasks, int nt, const F& f) {
  if (nt <= 1) { for (long i = 0; i < ntasks; ++i) f(i, 0); return; }
  Job<F> j{&f, ntasks};
  pool_run(nt, job_run<F>, &j);
}
int threads_for(const ScanParams& p, long ntasks) {
  const double work = (double)p.b * p.d * p.L * p.n;
  long nt = work >= kParMin ? pool_threads() : 1;
  return (int)(nt > ntasks ? ntasks : nt);
}

void forward(const ScanParams& p) {
  const long N = p.n, L = p.L, nc = (L + p.chunk - 1) / p.chunk, ntasks = p.b * p.d;
  float* Bt = alloc<float>(2 * p.b * L * N);
  float* Ct = Bt + p.b * L * N;
  transpose_bc(p, Bt, Ct);
  const int nt = threads_for(p, ntasks);
  float* hbuf = alloc<float>((long)nt * N);
  run_tasks(ntasks, nt, [&](long ch, int tid) {
    const long bb = ch / p.d, dd = ch % p.d, row = ch * L;
    float* h = hbuf + (long)tid * N;
    const float* a = p.A + dd * N;
    for (long k = 0; k < N; ++k) h[k] = p.h0 ? (float)p.h0[ch * N + k] : 0.0f;
    const float Dd = p.D[dd];
    for (long t = 0; t < L; ++t) {
      if (t % p.chunk == 0) {
        double* c = p.ck + (ch * nc + t / p.chunk) * N;
        for (long k = 0; k < N; ++k) c[k] = h[k];
      }
      const float dt = p.delta[row + t], x = p.u[row + t], dtx = dt * x;
      const float* bt = Bt + (bb * L + t) * N;
      const float* ct = Ct + (bb * L + t) * N;
      float s = 0.0f;
#pragma omp simd reduction(+ : s)
      for (long k = 0; k < N; ++k) {
        const float hk = f_exp(dt * a[k]) * h[k] + dtx * bt[k];
        h[k] = hk;
        s += ct[k] * hk;
      }
      p.y[row + t] = s + Dd * x;
    }
    for (long k = 0; k < N; ++k) p.last[ch * N + k] = h[k];
  });
  std::free(hbuf);
  std::free(Bt);
}

void backward(const ScanParams& p) {
  const long N = p.n, L = p.L, K = p.chunk, nc = (L + K - 1) / K;
  const long ngroups = (p.d + kGroup - 1) / kGroup, ntasks = p.b * ngroups;
  float* Bt = alloc<float>(2 * p.b * L * N);
  float* Ct = Bt + p.b * L * N;
  transpose_bc(p, Bt, Ct);
  // per task: dB, dC partials [L, n] (summed over the task's channels); per (batch row, channel): dA [n], dD
  float* PB = alloc<float>(2 * ntasks * L * N);
  float* PC = PB + ntasks * L * N;
  std::memset(PB, 0, sizeof(float) * 2 * ntasks * L * N);
  double* QA = alloc<double>(p.b * p.d * N);
  double* QD = alloc<double>(p.b * p.d);
  const int nt = threads_for(p, ntasks);
  // per thread: hs [(K + 1) n] (the chunk's states, hs[0] = before it), dAs [K n], gh [n]
  const long per = (2 * K + 2) * N;
  float* tbuf = alloc<float>((long)nt * per);
  run_tasks(ntasks, nt, [&](long task, int tid) {
    const long bb = task / ngroups, g = task % ngroups;
    float* hs = tbuf + (long)tid * per;
    float* dAs = hs + (K + 1) * N;
    float* gh = dAs + K * N;
    float* pb = PB + task * L * N;
    float* pc = PC + task * L * N;
    for (long dd = g * kGroup; dd < lmin(p.d, (g + 1) * kGroup); ++dd) {
      const long ch = bb * p.d + dd, row = ch * L;
      const float* a = p.A + dd * N;
      const float Dd = p.D[dd];
      double* qa = QA + ch * N;
      double gDacc = 0;
      for (long k = 0; k < N; ++k) { gh[k] = 0.0f; qa[k] = 0.0; }
      for (long c = nc - 1; c >= 0; --c) {
        const long t0 = c * K, t1 = lmin(L, t0 + K);
        const double* ck = p.ck + (ch * nc + c) * N;
        for (long k = 0; k < N; ++k) hs[k] = (float)ck[k];
        for (long t = t0; t < t1; ++t) {
          const float dt = p.delta[row + t], dtx = dt * p.u[row + t];
          const float* bt = Bt + (bb * L + t) * N;
          float* hp = hs + (t - t0) * N;
          float* dA = dAs + (t - t0) * N;
#pragma omp simd
          for (long k = 0; k < N; ++k) {
            dA[k] = f_exp(dt * a[k]);
            hp[N + k] = dA[k] * hp[k] + dtx * bt[k];
          }
        }
        for (long t = t1 - 1; t >= t0; --t) {
          const float gyt = p.gy[row + t], dt = p.delta[row + t], x = p.u[row + t], dtx = dt * x;
          const float* bt = Bt + (bb * L + t) * N;
          const float* ct = Ct + (bb * L + t) * N;
          const float* hprev = hs + (t - t0) * N;
          const float* hcur = hprev + N;
          const float* dA = dAs + (t - t0) * N;
          float* pbt = pb + t * N;
          float* pct = pc + t * N;
          float gdt = 0.0f, gx = 0.0f;
          gDacc += (double)gyt * x;
#pragma omp simd reduction(+ : gdt, gx)
          for (long k = 0; k < N; ++k) {
            pct[k] += gyt * hcur[k];
            const float ghn = gh[k] + gyt * ct[k];
            const float gdA = ghn * hprev[k] * dA[k];
            gdt += gdA * a[k] + ghn * bt[k] * x;
            qa[k] += (double)(gdA * dt);
            pbt[k] += ghn * dtx;
            gx += ghn * dt * bt[k];
            gh[k] = ghn * dA[k];
          }
          p.gu[row + t] = gx + gyt * Dd;
          p.gdelta[row + t] = gdt;
        }
      }
      QD[ch] = gDacc;
    }
  });
  // fixed-order reductions: over channel groups (dB, dC), over batch rows (dA, dD)
  for (long bb = 0; bb < p.b; ++bb)
    for (long k = 0; k < N; ++k)
      for (long t = 0; t < L; ++t) {
        double sb = 0, sc = 0;
        for (long g = 0; g < ngroups; ++g) {
          sb += PB[((bb * ngroups + g) * L + t) * N + k];
          sc += PC[((bb * ngroups + g) * L + t) * N + k];
        }
        p.gB[(bb * N + k) * L + t] = (float)sb;
        p.gC[(bb * N + k) * L + t] = (float)sc;
      }
  for (long dd = 0; dd < p.d; ++dd) {
    double sd = 0;
    for (long bb = 0; bb < p.b; ++bb) sd += QD[bb * p.d + dd];
    p.gD[dd] = (float)sd;
    for (long k = 0; k < N; ++k) {
      double s = 0;
      for (long bb = 0; bb < p.b; ++bb) s += QA[(bb * p.d + dd) * N + k];
      p.gA[dd * N + k] = (float)s;
    }
  }
  std::free(tbuf);
  std::free(QD);
  std::free(QA);
  std::free(PB);
  std::free(Bt);
}

}  // namespace
}  // namespace TSF_SNS
}  // namespace tsf
