// N-API surface of the native backend. Typed arrays are used in place (zero copy); every call runs
// synchronously on the shared pool while the calling JS thread takes part as worker 0.
// Runtime CPU dispatch: AVX-512 (+BF16) -> AVX2+FMA -> portable; TSFORMER_ISA or setIsa() can force
// a lower level (tests run every level the CPU has).
#include <napi.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "gemm.h"
#include "pool.h"

namespace tsf {
int active_isa_level();
void register_kernels(Napi::Env env, Napi::Object exports);  // addon_kernels.cc
void register_flash(Napi::Env env, Napi::Object exports);    // addon_flash.cc
}  // namespace tsf

namespace {
using namespace tsf;

enum Isa { ISA_SCALAR = 0, ISA_AVX2 = 1, ISA_AVX512 = 2 };
const char* kIsaNames[] = {"scalar", "avx2", "avx512"};

struct Cpu { bool avx2 = false, fma = false, avx512 = false, bf16 = false; };
Cpu detect() {
  Cpu c;
  __builtin_cpu_init();  // libgcc also checks that the OS saves the ymm/zmm state (XGETBV)
  c.avx2 = __builtin_cpu_supports("avx2");
  c.fma = __builtin_cpu_supports("fma");
  c.avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
  c.bf16 = c.avx512 && __builtin_cpu_supports("avx512bf16");
  return c;
}
const Cpu kCpu = detect();
int best_isa() { return kCpu.avx512 ? ISA_AVX512 : (kCpu.avx2 && kCpu.fma) ? ISA_AVX2 : ISA_SCALAR; }
int g_isa = [] {
  int isa = best_isa();
  if (const char* e = std::getenv("TSFORMER_ISA")) {
    for (int i = 0; i < 3; ++i)
      if (std::strcmp(e, kIsaNames[i]) == 0 && i < isa) isa = i;
  }
  return isa;
}();

Napi::Value fail(Napi::Env env, const std::string& msg, bool range = false) {
  if (range) Napi::RangeError::New(env, msg).ThrowAsJavaScriptException();
  else Napi::TypeError::New(env, msg).ThrowAsJavaScriptException();
  return env.Undefined();
}

bool get_int(const Napi::CallbackInfo& info, size_t i, long* out, long lo = 0) {
  if (!info[i].IsNumber()) return false;
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (!(d >= (double)lo) || d > 9.0e15 || std::floor(d) != d) return false;
  *out = (long)d;
  return true;
}

// Largest element index touched by a [batch] x [rows x cols] strided operand, or -1 if empty.
double last_index(long off, long batch, long stride, long rows, long cols, long ld) {
  if (batch == 0 || rows == 0 || cols == 0) return -1;
  return (double)off + (double)(batch - 1) * stride + (double)(rows - 1) * ld + (cols - 1);
}

// gemm(batch, m, n, k, a, aOff, lda, strideA, transA, b, bOff, ldb, strideB, transB,
//      c, cOff, ldc, strideC, alpha, beta[, bias, biasOff]) -- fp32: a/b Float32Array, bias null or
//      a Float32Array of n values from biasOff (batch 1 only); bf16: a/b Uint16Array, then [mode].
Napi::Value Gemm(const Napi::CallbackInfo& info, bool bf16) {
  Napi::Env env = info.Env();
  if (info.Length() < 20) return fail(env, "gemm: expected 20 arguments");
  long batch, m, n, k, aOff, lda, sA, bOff, ldb, sB, cOff, ldc, sC;
  const struct { size_t i; long* v; const char* name; } ints[] = {
      {0, &batch, "batch"}, {1, &m, "m"}, {2, &n, "n"}, {3, &k, "k"}, {5, &aOff, "aOff"},
      {6, &lda, "lda"}, {7, &sA, "strideA"}, {10, &bOff, "bOff"}, {11, &ldb, "ldb"},
      {12, &sB, "strideB"}, {15, &cOff, "cOff"}, {16, &ldc, "ldc"}, {17, &sC, "strideC"}};
  for (auto& e : ints)
    if (!get_int(info, e.i, e.v)) return fail(env, std::string("gemm: ") + e.name + " must be a non-negative integer");
  const bool tA = info[8].ToBoolean(), tB = info[13].ToBoolean();
  if (!info[18].IsNumber() || !info[19].IsNumber()) return fail(env, "gemm: alpha and beta must be numbers");
  const float alpha = (float)info[18].As<Napi::Number>().DoubleValue();
  const float beta = (float)info[19].As<Napi::Number>().DoubleValue();
  const napi_typedarray_type want = bf16 ? napi_uint16_array : napi_float32_array;
  for (size_t i : {4, 9})
    if (!info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != want)
      return fail(env, bf16 ? "gemmBf16: a and b must be Uint16Array (bf16 bits)" : "gemm: a and b must be Float32Array");
  if (!info[14].IsTypedArray() || info[14].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    return fail(env, "gemm: c must be a Float32Array");
  const long ar = tA ? k : m, ac = tA ? m : k, br = tB ? n : k, bc = tB ? k : n;
  if ((ar > 1 && lda < ac) || (br > 1 && ldb < bc) || (m > 1 && ldc < n))
    return fail(env, "gemm: a leading dimension is smaller than the stored row length", true);
  const size_t aLen = info[4].As<Napi::TypedArray>().ElementLength();
  const size_t bLen = info[9].As<Napi::TypedArray>().ElementLength();
  Napi::TypedArrayOf<float> c = info[14].As<Napi::TypedArrayOf<float>>();
  if (last_index(aOff, batch, sA, ar, ac, lda) >= (double)aLen) return fail(env, "gemm: A is out of bounds", true);
  if (last_index(bOff, batch, sB, br, bc, ldb) >= (double)bLen) return fail(env, "gemm: B is out of bounds", true);
  if (last_index(cOff, batch, sC, m, n, ldc) >= (double)c.ElementLength()) return fail(env, "gemm: C is out of bounds", true);
  GemmParams p;
  p.batch = batch; p.m = m; p.n = n; p.k = k;
  p.lda = lda; p.strideA = sA; p.transA = tA;
  p.ldb = ldb; p.strideB = sB; p.transB = tB;
  p.c = c.Data() + cOff; p.ldc = ldc; p.strideC = sC;
  p.alpha = alpha; p.beta = beta;
  if (!bf16) {
    p.kind = KIND_F32;
    p.a = info[4].As<Napi::TypedArrayOf<float>>().Data() + aOff;
    p.b = info[9].As<Napi::TypedArrayOf<float>>().Data() + bOff;
    if (info.Length() > 20 && !info[20].IsNull() && !info[20].IsUndefined()) {
      long biasOff;
      if (!info[20].IsTypedArray() || info[20].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
        return fail(env, "gemm: bias must be a Float32Array or null");
      if (info.Length() < 22 || !get_int(info, 21, &biasOff)) return fail(env, "gemm: biasOff must be a non-negative integer");
      if (batch > 1) return fail(env, "gemm: a bias needs batch 1", true);
      Napi::TypedArrayOf<float> bias = info[20].As<Napi::TypedArrayOf<float>>();
      if (n > 0 && (double)biasOff + n > (double)bias.ElementLength()) return fail(env, "gemm: bias is out of bounds", true);
      p.bias = bias.Data() + biasOff;
    }
    if (g_isa == ISA_AVX512) gemm_avx512(p);
    else if (g_isa == ISA_AVX2) gemm_avx2(p);
    else gemm_scalar(p);
    return env.Undefined();
  }
  p.a = info[4].As<Napi::TypedArrayOf<uint16_t>>().Data() + aOff;
  p.b = info[9].As<Napi::TypedArrayOf<uint16_t>>().Data() + bOff;
  const std::string mode = info.Length() > 20 && info[20].IsString() ? info[20].As<Napi::String>().Utf8Value() : "auto";
  const bool hw = g_isa == ISA_AVX512 && kCpu.bf16;
  if (mode == "pairs") {  // force the vdpbf16ps layout (emulated on AVX2): used by tests
    p.kind = KIND_BF16_PAIRS;
    if (hw) gemm_avx512bf16(p);
    else if (g_isa >= ISA_AVX2) gemm_avx2(p);
    else return fail(env, "gemmBf16: mode 'pairs' needs AVX2 or AVX512_BF16");
  } else if (hw) {
    p.kind = KIND_BF16_PAIRS;
    gemm_avx512bf16(p);
  } else {
    p.kind = KIND_BF16;
    if (g_isa == ISA_AVX512) gemm_avx512(p);
    else if (g_isa == ISA_AVX2) gemm_avx2(p);
    else gemm_scalar(p);
  }
  return env.Undefined();
}

Napi::Value GemmF32(const Napi::CallbackInfo& info) { return Gemm(info, false); }
Napi::Value GemmBf16(const Napi::CallbackInfo& info) { return Gemm(info, true); }

// toBf16(src: Float32Array, dst: Uint16Array) / fromBf16(src: Uint16Array, dst: Float32Array)
Napi::Value Convert(const Napi::CallbackInfo& info, bool to) {
  Napi::Env env = info.Env();
  const napi_typedarray_type st = to ? napi_float32_array : napi_uint16_array;
  const napi_typedarray_type dt = to ? napi_uint16_array : napi_float32_array;
  if (info.Length() < 2 || !info[0].IsTypedArray() || !info[1].IsTypedArray() ||
      info[0].As<Napi::TypedArray>().TypedArrayType() != st || info[1].As<Napi::TypedArray>().TypedArrayType() != dt)
    return fail(env, to ? "toBf16(src: Float32Array, dst: Uint16Array)" : "fromBf16(src: Uint16Array, dst: Float32Array)");
  const size_t n = info[0].As<Napi::TypedArray>().ElementLength();
  if (info[1].As<Napi::TypedArray>().ElementLength() < n) return fail(env, "bf16 conversion: dst is shorter than src", true);
  const bool v = g_isa >= ISA_AVX2;
  if (to) {
    const float* s = info[0].As<Napi::TypedArrayOf<float>>().Data();
    uint16_t* d = info[1].As<Napi::TypedArrayOf<uint16_t>>().Data();
    v ? to_bf16_avx2(s, d, (long)n) : to_bf16_scalar(s, d, (long)n);
  } else {
    const uint16_t* s = info[0].As<Napi::TypedArrayOf<uint16_t>>().Data();
    float* d = info[1].As<Napi::TypedArrayOf<float>>().Data();
    v ? from_bf16_avx2(s, d, (long)n) : from_bf16_scalar(s, d, (long)n);
  }
  return env.Undefined();
}
Napi::Value ToBf16(const Napi::CallbackInfo& info) { return Convert(info, true); }
Napi::Value FromBf16(const Napi::CallbackInfo& info) { return Convert(info, false); }

Napi::Value CpuFeatures(const Napi::CallbackInfo& info) {
  std::vector<const char*> f;
  if (kCpu.avx512) f.push_back("avx512f");
  if (kCpu.bf16) f.push_back("avx512bf16");
  if (kCpu.avx2) f.push_back("avx2");
  if (kCpu.fma) f.push_back("fma");
  Napi::Array a = Napi::Array::New(info.Env(), f.size());
  for (size_t i = 0; i < f.size(); ++i) a.Set((uint32_t)i, f[i]);
  return a;
}

// isa() -> active level; setIsa("auto" | "avx512" | "avx2" | "scalar") -> active level (clamped to CPU)
Napi::Value GetIsa(const Napi::CallbackInfo& info) {
  std::string s = kIsaNames[g_isa];
  if (g_isa == ISA_AVX512 && kCpu.bf16) s += "+bf16";
  return Napi::String::New(info.Env(), s);
}
Napi::Value SetIsa(const Napi::CallbackInfo& info) {
  const std::string want = info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "auto";
  int isa = best_isa();
  if (want != "auto") {
    int i = 0;
    while (i < 3 && want != kIsaNames[i]) ++i;
    if (i == 3) return fail(info.Env(), "setIsa: expected auto, avx512, avx2 or scalar");
    if (i < isa) isa = i;
  }
  g_isa = isa;
  return GetIsa(info);
}

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  long n;
  if (info.Length() < 1 || !get_int(info, 0, &n, 1)) return fail(info.Env(), "setThreads: expected a positive integer");
  pool_set_threads((int)n);
  return Napi::Number::New(info.Env(), pool_threads());
}
Napi::Value GetThreads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), pool_threads()); }

// Core clock in GHz on the calling thread: a chain of dependent 64-bit multiplies (3 cycles latency
// on every x86-64 core since Sandy Bridge and Zen) timed with steady_clock; best of 5 runs of ~ms
// each. (A chain of add-immediates, used before, runs faster than one per cycle on cores whose
// renamer folds immediates, e.g. Golden Cove: it read 21 GHz there.)
Napi::Value ClockGHz(const Napi::CallbackInfo& info) {
  double best = 0;
  for (int run = 0; run < 5; ++run) {
    uint64_t x = 1, iters = 100000;
    auto t0 = std::chrono::steady_clock::now();
    __asm__ volatile(
        "1:\n\t"
        ".rept 50\n\t"
        "imulq %0, %0\n\t"
        ".endr\n\t"
        "decq %1\n\t"
        "jnz 1b\n\t"
        : "+r"(x), "+r"(iters));
    double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
    double ghz = (3.0 * 50 * 100000) / ns;
    if (ghz > best) best = ghz;
  }
  return Napi::Number::New(info.Env(), best);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("gemm", Napi::Function::New(env, GemmF32));
  exports.Set("gemmBf16", Napi::Function::New(env, GemmBf16));
  exports.Set("toBf16", Napi::Function::New(env, ToBf16));
  exports.Set("fromBf16", Napi::Function::New(env, FromBf16));
  exports.Set("cpuFeatures", Napi::Function::New(env, CpuFeatures));
  exports.Set("isa", Napi::Function::New(env, GetIsa));
  exports.Set("setIsa", Napi::Function::New(env, SetIsa));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads));
  exports.Set("getThreads", Napi::Function::New(env, GetThreads));
  exports.Set("clockGHz", Napi::Function::New(env, ClockGHz));
  register_kernels(env, exports);
  register_flash(env, exports);
  return exports;
}

}  // namespace

int tsf::active_isa_level() { return g_isa; }

NODE_API_MODULE(tsformer_native, Init)
