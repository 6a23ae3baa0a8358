// Kernels of kernels_impl.h compiled for the avx512 level (see binding.gyp for the flags).
#define TSF_KNS kernels_avx512_ns
#define TSF_KTABLE kernels_avx512_table
#include "kernels_impl.h"
