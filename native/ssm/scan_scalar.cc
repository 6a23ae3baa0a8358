// scan_impl.h compiled for the scalar level (see binding.gyp for the flags).
#define TSF_SNS scan_scalar_ns
#include "scan_impl.h"

namespace tsf {
const ScanTable scan_scalar_table = {scan_scalar_ns::forward, scan_scalar_ns::backward};
}  // namespace tsf
