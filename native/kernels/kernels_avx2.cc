// Kernels of kernels_impl.h compiled for the avx2 level (see binding.gyp for the flags).
#define TSF_KNS kernels_avx2_ns
#define TSF_KTABLE kernels_avx2_table
#include "kernels_impl.h"
