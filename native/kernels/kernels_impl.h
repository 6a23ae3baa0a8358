// Float32 kernels of the Backend interface (see kernels.h). Plain C++ written so that GCC vectorises
// it for the ISA of the including translation unit (-mavx2 -mfma, or the SSE2 baseline): branch-free
// inner loops, own exp/tanh/sigmoid (the libm ones do not vectorise), `omp simd` reductions
// (-fopenmp-simd) accumulating in double where the js reference accumulates in double.
// Included once per ISA with TSF_KNS (the namespace) and TSF_KTABLE (the name of this ISA's
// KernelTable, see kernels.h) defined; everything lives in that namespace and no std templates are
// used, so the differently compiled copies never merge at link time.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "kernels.h"
#include "runtime/pool.h"

namespace tsf {
namespace TSF_KNS {
namespace {

constexpr long kParMin = 65536;       // elements: below this a kernel runs on the calling thread
constexpr long kParMinHeavy = 16384;  // same for transcendental elementwise ops
const float kInf = __builtin_inff();

inline long lmin(long a, long b) { return a < b ? a : b; }
inline long lmax(long a, long b) { return a > b ? a : b; }
inline long cdiv(long a, long b) { return (a + b - 1) / b; }

#include "math_impl.h"                     // threading helpers; exp, sigmoid, tanh
#include "elementwise/elementwise_impl.h"  // unary, binary, strided copy, where
#include "reduce/reduce_impl.h"            // reductions, cumsum, softmax, cross-entropy
#include "rows/rows_impl.h"                // norms, gather / scatter-add, AdamW

}  // namespace
}  // namespace TSF_KNS
}  // namespace tsf

namespace tsf {
const KernelTable TSF_KTABLE = {
    TSF_KNS::k_unary, TSF_KNS::k_unary_backward, TSF_KNS::k_binary, TSF_KNS::k_strided_copy,
    TSF_KNS::k_where, TSF_KNS::k_reduce, TSF_KNS::k_cumsum, TSF_KNS::k_softmax,
    TSF_KNS::k_softmax_backward, TSF_KNS::k_cross_entropy, TSF_KNS::k_cross_entropy_backward,
    TSF_KNS::k_layer_norm, TSF_KNS::k_layer_norm_backward, TSF_KNS::k_rms_norm,
    TSF_KNS::k_rms_norm_backward, TSF_KNS::k_index_select, TSF_KNS::k_index_add, TSF_KNS::k_adamw};
}  // namespace tsf
