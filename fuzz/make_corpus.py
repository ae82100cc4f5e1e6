#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_plan (fuzz/corpus/). Not needed to build or run anything:
the seeds are committed. Rerun after changing the input layout of fuzz_plan.c (see the
comment at its top): python3 fuzz/make_corpus.py"""
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
ADD, SUB, MUL, RELU, TANH, SIGMOID, SOFTPLUS, MISH = range(8)
VALUES = [0.5, 0.2, -0.7, 1.5, -3.0, 0.0, 1e-3, 10.0, 100.0, -0.25, 2.0, -1.0, 0.1, 42.0]
EDGES = [0, -1, 1, 2, -2, 3, 7, 64, 65535, 65536, 2**31 - 1, 2**31, (2**31 - 1) * 2, -2**31,
         2**20, 2**30, 2**40, 2**62, 2**63 - 1, -2**63, -2**63 + 1, -2**31]
# (lo, hi) of the tiny range of each descriptor field, in order
FIELDS = [("batch", 1, 2), ("in_channels", 1, 4), ("height", 1, 12), ("width", 1, 12),
          ("out_channels", 1, 4), ("kernel_h", 1, 5), ("kernel_w", 1, 5), ("stride_h", 0, 3),
          ("stride_w", 0, 3), ("pad_h", 0, 3), ("pad_w", 0, 3), ("dilation_h", 0, 3),
          ("dilation_w", 0, 3)]


def field(name, v):
    lo, hi = next((l, h) for n, l, h in FIELDS if n == name)
    if lo <= v <= hi:
        return bytes([v - lo])
    if v in EDGES:
        return bytes([240, EDGES.index(v)])
    return bytes([252]) + struct.pack(">q", v)


def seed(desc, ops, math=0, has_bias=1, modes=(0, 0, 0, 0), tail=b"", ops_null=False,
         n_ops=None, data_seed=1):
    b = struct.pack(">Q", data_seed)
    for name, _, _ in FIELDS:
        b += field(name, desc.get(name, {"stride_h": 1, "stride_w": 1, "dilation_h": 1,
                                         "dilation_w": 1, "pad_h": 0, "pad_w": 0}.get(name, 1)))
    b += bytes([has_bias])
    n = len(ops) if n_ops is None else n_ops
    b += bytes([n]) if isinstance(n, int) and 0 <= n <= 8 else n
    b += bytes([255 if ops_null else 0])
    for kind, value in ops:
        b += bytes([kind]) if 0 <= kind < 8 else bytes([250]) + struct.pack(">i", kind)
        b += bytes([VALUES.index(value)]) if value in VALUES else bytes([250]) + struct.pack(">f", value)
    b += bytes([math])
    for m in modes:
        b += bytes(m) if isinstance(m, tuple) else bytes([m])
    return b + tail


def write(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


os.makedirs(OUT, exist_ok=True)
small = dict(batch=1, in_channels=3, height=12, width=12, out_channels=4, kernel_h=3, kernel_w=3)
# no foreign/alias (2 zero bytes), no specials, a valid 16-byte range test, the CPU context
TAIL = bytes([0, 0, 0, 15, 3, 8, 1])
write("sub_sub_mish", seed(small, [(SUB, 0.5), (SUB, 0.2), (MISH, 0)], tail=TAIL))
write("mish_mish_tf32_padded",
      seed(dict(batch=2, in_channels=4, height=10, width=9, out_channels=4, kernel_h=3,
                kernel_w=3, pad_h=1, pad_w=1), [(MISH, 0), (MISH, 0)], math=1, tail=TAIL))
write("strided_dilated_no_bias",
      seed(dict(batch=1, in_channels=2, height=12, width=11, out_channels=3, kernel_h=3,
                kernel_w=2, stride_h=2, stride_w=3, pad_h=2, pad_w=1, dilation_h=2,
                dilation_w=1),
           [(MUL, 1.5), (TANH, 0), (SIGMOID, 0), (SOFTPLUS, 0), (RELU, 0), (ADD, 42.0)],
           has_bias=0, modes=(0, 0, 0, 0, 0), tail=TAIL))
write("specials_nan_inf",
      seed(small, [(ADD, 0.5), (SUB, 100.0), (MUL, -3.0), (MISH, 0)],
           tail=bytes([0, 0, 3, 0, 0, 4, 1, 8, 2]) + TAIL[3:]))
write("wild_extents",
      seed(dict(small, batch=2**63 - 1, height=-2**31, width=2**40), [(MISH, 0)], tail=TAIL))
write("overflowing_products",
      seed(dict(batch=2**31 - 1, in_channels=2**31 - 1, height=2**31 - 1, width=2**31 - 1,
                out_channels=1, kernel_h=1, kernel_w=1), [], tail=TAIL))
write("big_valid_plan_small_buffers",
      seed(dict(small, height=65536, width=64), [(RELU, 0)], tail=TAIL))
write("too_small_and_aliased",
      seed(small, [(SUB, 0.5), (MISH, 0)], modes=(0, (205, 3), 0, (205, 1)),
           tail=bytes([0, 250]) + TAIL[2:]))
write("bad_ops_and_math",
      seed(small, [(MISH, 0), (99, 0.0), (ADD, float("nan"))], math=250,
           tail=bytes([0, 0, 0, 7]) + TAIL[4:]))
write("n_ops_out_of_range",
      seed(small, [(RELU, 0)] * 9, n_ops=bytes([246]), tail=TAIL))
write("range_overflow",
      seed(small, [], tail=bytes([0, 0, 0, 63, 221, 203, 200])))  # offset SIZE_MAX, 3 bytes
