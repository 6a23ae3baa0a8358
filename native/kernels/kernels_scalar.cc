// Kernels of kernels_impl.h compiled for the scalar level (see binding.gyp for the flags).
#define TSF_KNS kernels_scalar_ns
#define TSF_KTABLE kernels_scalar_table
#include "kernels_impl.h"
