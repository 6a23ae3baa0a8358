// CPU feature detection and the active instruction-set level (see isa.h).
#include "isa.h"

#include <cstdlib>
#include <cstring>

namespace tsf {
namespace {

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
int best() { return kCpu.avx512 ? ISA_AVX512 : (kCpu.avx2 && kCpu.fma) ? ISA_AVX2 : ISA_SCALAR; }
int g_isa = [] {
  int isa = best();
  if (const char* e = std::getenv("TSFORMER_ISA")) {
    for (int i = 0; i < ISA_COUNT; ++i)
      if (std::strcmp(e, kIsaNames[i]) == 0 && i < isa) isa = i;
  }
  return isa;
}();

}  // namespace

const char* const kIsaNames[ISA_COUNT] = {"scalar", "avx2", "avx512"};
const Cpu& cpu() { return kCpu; }
int best_isa_level() { return best(); }
int active_isa_level() { return g_isa; }
void set_isa_level(int level) { g_isa = level < best() ? level : best(); }

}  // namespace tsf
