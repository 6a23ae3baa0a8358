{
  # One build runs on any x86-64: the ISA-specific kernels are separate static libraries compiled
  # with their own -m flags and chosen at run time (native/runtime/isa.h); nothing uses -march=native.
  # native/ is one folder per kernel family (gemm/, attention/, kernels/ + elementwise/, reduce/, rows/),
  # plus napi/ (the N-API surface) and runtime/ (thread pool, CPU dispatch).
  "target_defaults": {
    "cflags_cc!": ["-fno-exceptions", "-O2", "-O0"],
    "cflags_cc": ["-std=c++17", "-O3", "-fPIC", "-fno-math-errno", "-Wall", "-Wno-unused-function"],
    "cflags!": ["-O2", "-O0"],
    "cflags": ["-O3", "-fPIC"],
    "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "native"],
    "defines": ["NAPI_DISABLE_CPP_EXCEPTIONS", "NAPI_VERSION=8"]
  },
  "targets": [
    {
      "target_name": "tsformer_avx2",
      "type": "static_library",
      "sources": ["native/gemm/gemm_avx2.cc", "native/gemm/quant_avx2.cc", "native/kernels/kernels_avx2.cc", "native/attention/flash_avx2.cc", "native/ssm/scan_avx2.cc"],
      "cflags_cc": ["-mavx2", "-mfma", "-fopenmp-simd", "-fno-trapping-math"]
    },
    {
      "target_name": "tsformer_avx512",
      "type": "static_library",
      "sources": ["native/gemm/gemm_avx512.cc", "native/gemm/quant_avx512.cc", "native/kernels/kernels_avx512.cc", "native/attention/flash_avx512.cc", "native/ssm/scan_avx512.cc"],
      "cflags_cc": ["-mavx2", "-mfma", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-fopenmp-simd", "-fno-trapping-math"]
    },
    {
      "target_name": "tsformer_avx512bf16",
      "type": "static_library",
      "sources": ["native/gemm/gemm_avx512bf16.cc"],
      "cflags_cc": ["-mavx2", "-mfma", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx512bf16"]
    },
    {
      "target_name": "tsformer_native",
      "sources": ["native/napi/addon.cc", "native/napi/gemm.cc", "native/napi/kernels.cc", "native/napi/flash.cc", "native/napi/ssm.cc", "native/napi/conv.cc", "native/napi/quant.cc", "native/napi/moe.cc", "native/conv/im2col.cc",
                  "native/runtime/isa.cc", "native/runtime/pool.cc",
                  "native/gemm/gemm_scalar.cc", "native/gemm/quant_scalar.cc", "native/kernels/kernels_scalar.cc", "native/attention/flash_scalar.cc", "native/ssm/scan_scalar.cc"],
      "dependencies": ["tsformer_avx2", "tsformer_avx512", "tsformer_avx512bf16"],
      "libraries": ["-pthread"],
      "cflags_cc": ["-pthread", "-fopenmp-simd", "-fno-trapping-math"]
    }
  ]
}
