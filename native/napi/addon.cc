// The addon's module: registers every family's entry points (napi/*.cc) and the runtime controls
// (CPU features, instruction-set level, threads). Typed arrays are used in place (zero copy); every
// call runs synchronously on the shared pool while the calling JS thread takes part as worker 0.
#include <napi.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "args.h"
#include "runtime/isa.h"
#include "runtime/pool.h"

namespace tsf {
void register_gemm(Napi::Env env, Napi::Object exports);     // napi/gemm.cc
void register_kernels(Napi::Env env, Napi::Object exports);  // napi/kernels.cc
void register_flash(Napi::Env env, Napi::Object exports);    // napi/flash.cc
void register_ssm(Napi::Env env, Napi::Object exports);      // napi/ssm.cc
void register_conv(Napi::Env env, Napi::Object exports);     // napi/conv.cc
void register_quant(Napi::Env env, Napi::Object exports);    // napi/quant.cc
void register_moe(Napi::Env env, Napi::Object exports);      // napi/moe.cc
}  // namespace tsf

namespace {
using namespace tsf;

Napi::Value CpuFeatures(const Napi::CallbackInfo& info) {
  std::vector<const char*> f;
  if (cpu().avx512) f.push_back("avx512f");
  if (cpu().bf16) f.push_back("avx512bf16");
  if (cpu().avx2) f.push_back("avx2");
  if (cpu().fma) f.push_back("fma");
  Napi::Array a = Napi::Array::New(info.Env(), f.size());
  for (size_t i = 0; i < f.size(); ++i) a.Set((uint32_t)i, f[i]);
  return a;
}

// isa() -> active level; setIsa("auto" | "avx512" | "avx2" | "scalar") -> active level (clamped to CPU)
Napi::Value GetIsa(const Napi::CallbackInfo& info) {
  std::string s = kIsaNames[active_isa_level()];
  if (active_isa_level() == ISA_AVX512 && cpu().bf16) s += "+bf16";
  return Napi::String::New(info.Env(), s);
}
Napi::Value SetIsa(const Napi::CallbackInfo& info) {
  Call c(info, "setIsa");
  const std::string want = info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "auto";
  int isa = ISA_COUNT - 1;
  if (want != "auto") {
    isa = 0;
    while (isa < ISA_COUNT && want != kIsaNames[isa]) ++isa;
    if (isa == ISA_COUNT) { c.type_error("expected auto, avx512, avx2 or scalar"); return c.finish(); }
  }
  set_isa_level(isa);
  return GetIsa(info);
}

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  Call c(info, "setThreads");
  const long n = c.count(0, "n");
  if (c.ok() && n < 1) c.type_error("expected a positive integer");
  if (c.ok()) pool_set_threads((int)n);
  return c.finish(Napi::Number::New(info.Env(), pool_threads()));
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
  exports.Set("cpuFeatures", Napi::Function::New(env, CpuFeatures));
  exports.Set("isa", Napi::Function::New(env, GetIsa));
  exports.Set("setIsa", Napi::Function::New(env, SetIsa));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads));
  exports.Set("getThreads", Napi::Function::New(env, GetThreads));
  exports.Set("clockGHz", Napi::Function::New(env, ClockGHz));
  register_gemm(env, exports);
  register_kernels(env, exports);
  register_flash(env, exports);
  register_ssm(env, exports);
  register_conv(env, exports);
  register_quant(env, exports);
  register_moe(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(tsformer_native, Init)
