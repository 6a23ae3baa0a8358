// flash_impl.h compiled for the x86-64 baseline (the portable fallback).
#define TSF_FNS flash_scalar_ns
#include "flash_impl.h"

namespace tsf {
void flash_forward_scalar(const FlashParams& p) { flash_scalar_ns::forward(p); }
void flash_backward_scalar(const FlashParams& p) { flash_scalar_ns::backward(p); }
}  // namespace tsf
