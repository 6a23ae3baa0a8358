// Kernels of kernels_impl.h compiled for the avx512 level (see binding.gyp for the flags).
#define TSF_KNS kernels_avx512_ns
#include "kernels_impl.h"

namespace tsf {
using namespace kernels_avx512_ns;
const KernelTable kernels_avx512_table = {
    k_unary, k_unary_backward, k_binary, k_strided_copy, k_where, k_reduce, k_cumsum,
    k_softmax, k_softmax_backward, k_cross_entropy, k_cross_entropy_backward,
    k_layer_norm, k_layer_norm_backward, k_rms_norm, k_rms_norm_backward,
    k_index_select, k_index_add, k_adamw};
}  // namespace tsf
