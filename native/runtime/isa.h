// Run-time instruction-set dispatch, one style for every kernel family: a family compiles its code
// once per level (scalar = the x86-64 baseline, avx2 = -mavx2 -mfma, avx512 = F/BW/VL/DQ; flags in
// binding.gyp) into one table of entry points per level, and calls through isa_table(), which picks the
// active level's table. Order of preference: AVX-512 -> AVX2+FMA -> portable; TSFORMER_ISA or
// set_isa_level() can force a lower level (the tests run every level the CPU has).
#pragma once

namespace tsf {

enum Isa { ISA_SCALAR = 0, ISA_AVX2 = 1, ISA_AVX512 = 2, ISA_COUNT = 3 };
extern const char* const kIsaNames[ISA_COUNT];  // "scalar", "avx2", "avx512"

struct Cpu { bool avx2 = false, fma = false, avx512 = false, bf16 = false; };
const Cpu& cpu();
int best_isa_level();                 // the best level this CPU runs
int active_isa_level();               // the level in use
void set_isa_level(int level);        // clamped to best_isa_level()

template <class T>
inline const T& isa_table(const T& scalar, const T& avx2, const T& avx512) {
  const int level = active_isa_level();
  return level >= ISA_AVX512 ? avx512 : level >= ISA_AVX2 ? avx2 : scalar;
}

}  // namespace tsf
