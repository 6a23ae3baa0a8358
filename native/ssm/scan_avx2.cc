// scan_impl.h compiled for the avx2 level (see binding.gyp for the flags).
#define TSF_SNS scan_avx2_ns
#include "scan_impl.h"

namespace tsf {
const ScanTable scan_avx2_table = {scan_avx2_ns::forward, scan_avx2_ns::backward};
}  // namespace tsf
