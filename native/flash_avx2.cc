// flash_impl.h compiled for the avx2 level (-mavx2 -mfma, see binding.gyp).
#define TSF_FNS flash_avx2_ns
#include "flash_impl.h"

namespace tsf {
void flash_forward_avx2(const FlashParams& p) { flash_avx2_ns::forward(p); }
void flash_backward_avx2(const FlashParams& p) { flash_avx2_ns::backward(p); }
}  // namespace tsf
