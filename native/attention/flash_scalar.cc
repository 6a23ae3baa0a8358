// flash_impl.h compiled for the x86-64 baseline (the portable fallback).
#define TSF_FNS flash_scalar_ns
#include "flash_impl.h"

namespace tsf {
const FlashTable flash_scalar_table = {flash_scalar_ns::forward, flash_scalar_ns::backward};
}  // namespace tsf
