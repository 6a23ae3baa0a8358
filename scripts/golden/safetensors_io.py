"""Minimal hand-written safetensors writer (the `safetensors` package is not available here).

Layout:
  * 8 bytes: little-endian u64 N = length of the JSON header
  * N bytes: JSON header, padded with spaces so that N is a multiple of 8
  * data buffer: every tensor's raw little-endian bytes, contiguous, in sorted-name order

Header: {"<name>": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
         "__metadata__": {str: str}}   (offsets relative to the start of the data buffer)
"""

import json
import os
import struct

import numpy as np


class BF16:
    """A bfloat16 tensor given by its raw bits (numpy has no bfloat16): `bits` is a uint16 array.

    Build it with `bf16_from_f32` (round to nearest even, as torch's float32 -> bfloat16 cast) or
    from torch: `BF16(t.to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16))`.
    """

    def __init__(self, bits):
        bits = np.asarray(bits)
        if bits.dtype != np.uint16:
            raise TypeError("BF16 bits must be uint16, got %s" % bits.dtype)
        self.bits = bits


def bf16_from_f32(arr):
    """Round float32 values to bfloat16 (nearest, ties to even); finite inputs only."""
    u = np.ascontiguousarray(arr, dtype=np.float32).view(np.uint32).astype(np.uint64)
    if not np.all(np.isfinite(arr)):
        raise ValueError("bf16_from_f32: non-finite input")
    rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return BF16(rounded.astype(np.uint16))


# numpy dtype -> (safetensors dtype string, little-endian numpy dtype used for the bytes)
_DTYPES = {
    np.dtype(np.float32): ("F32", "<f4"),
    np.dtype(np.float64): ("F64", "<f8"),
    np.dtype(np.float16): ("F16", "<f2"),
    np.dtype(np.int32): ("I32", "<i4"),
    np.dtype(np.int64): ("I64", "<i8"),
    np.dtype(np.uint8): ("U8", "u1"),
    np.dtype(np.bool_): ("BOOL", "u1"),
}


def save_file(tensors, path, metadata=None):
    """Write `tensors` (dict name -> numpy array) to `path` in safetensors format.

    A `BF16` value is stored as dtype "BF16" from its raw bits.
    `metadata` is an optional dict of str -> str, stored under "__metadata__".
    The file is written to a temporary name and renamed, so it is never half-written.
    """
    if metadata is not None:
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise TypeError("metadata must map str to str (key %r)" % (k,))

    header = {}
    chunks = []
    offset = 0
    for name in sorted(tensors):
        if name == "__metadata__":
            raise ValueError("tensor name '__metadata__' is reserved")
        value = tensors[name]
        if isinstance(value, BF16):
            arr, (st_dtype, le) = value.bits, ("BF16", "<u2")
        else:
            arr = np.asarray(value)
            if arr.dtype not in _DTYPES:
                raise TypeError("tensor %r: unsupported dtype %s" % (name, arr.dtype))
            st_dtype, le = _DTYPES[arr.dtype]
        raw = np.ascontiguousarray(arr).astype(le, copy=False).tobytes(order="C")
        header[name] = {
            "dtype": st_dtype,
            "shape": [int(d) for d in arr.shape],
            "data_offsets": [offset, offset + len(raw)],
        }
        chunks.append(raw)
        offset += len(raw)
    if metadata is not None:
        header["__metadata__"] = dict(metadata)

    hbytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hbytes += b" " * ((-len(hbytes)) % 8)

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hbytes)))
        f.write(hbytes)
        for c in chunks:
            f.write(c)
    os.replace(tmp, path)
