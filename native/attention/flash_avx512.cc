// flash_impl.h compiled for the avx512 level (see binding.gyp): the same 8-lane code and FMA order as
// the avx2 copy, so the same bits, but with 32 vector registers the register blocks no longer spill.
#define TSF_FNS flash_avx512_ns
#include "flash_impl.h"

namespace tsf {
const FlashTable flash_avx512_table = {flash_avx512_ns::forward, flash_avx512_ns::backward};
}  // namespace tsf
