// scan_impl.h compiled for the avx512 level (see binding.gyp for the flags).
#define TSF_SNS scan_avx512_ns
#include "scan_impl.h"

namespace tsf {
const ScanTable scan_avx512_table = {scan_avx512_ns::forward, scan_avx512_ns::backward};
}  // namespace tsf
