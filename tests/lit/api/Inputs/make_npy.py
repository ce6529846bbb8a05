#!/usr/bin/env python3
"""Write a C-order .npy of the given dtype (f4 or f2) and shape holding sin(i) values (stdlib only).

usage: make_npy.py OUT.npy f4|f2 D0 [D1 ...]
"""
import math
import struct
import sys


def main():
    out, kind, dims = sys.argv[1], sys.argv[2], [int(d) for d in sys.argv[3:]]
    n = 1
    for d in dims:
        n *= d
    values = [math.sin(i) for i in range(n)]
    fmt = {"f4": "f", "f2": "e"}[kind]
    shape = "(" + ", ".join(str(d) for d in dims) + ("," if len(dims) == 1 else "") + ")"
    header = "{'descr': '<%s', 'fortran_order': False, 'shape': %s, }" % (kind, shape)
    header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    with open(out, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1"))
        f.write(struct.pack("<%d%s" % (n, fmt), *values))


if __name__ == "__main__":
    main()
