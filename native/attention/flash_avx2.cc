// flash_impl.h compiled for the avx2 level (-mavx2 -mfma, see binding.gyp).
#define TSF_FNS flash_avx2_ns
#include "flash_impl.h"

namespace tsf {
const FlashTable flash_avx2_table = {flash_avx2_ns::forward, flash_avx2_ns::backward};
}  // namespace tsf
