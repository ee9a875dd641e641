#!/usr/bin/env python3
"""Compare the float tensors of two .safetensors files (standard library only).

usage: compare_safetensors.py A B [--prefix model.] [--atol X]
--atol 0 (default) demands bitwise equality. Prints the largest absolute difference and the
tensor holding it; exits 1 when a tensor is missing, has another shape, or differs by more.
"""
import argparse, array, json, struct, sys


def load(path):
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__" or info["dtype"] != "F32":
            continue
        a = array.array("f")
        lo, hi = info["data_offsets"]
        a.frombytes(raw[base + lo:base + hi])
        if sys.byteorder != "little":
            a.byteswap()
        out[name] = (tuple(info["shape"]), a)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--prefix", default="")
    ap.add_argument("--atol", type=float, default=0.0)
    args = ap.parse_args()
    A, B = load(args.a), load(args.b)
    names = sorted(n for n in A if n.startswith(args.prefix))
    if not names or sorted(n for n in B if n.startswith(args.prefix)) != names:
        print("tensor names differ"); return 1
    worst, where, bitwise = 0.0, "", True
    for n in names:
        (sa, va), (sb, vb) = A[n], B[n]
        if sa != sb:
            print("shape of %s: %s vs %s" % (n, sa, sb)); return 1
        if va.tobytes() != vb.tobytes():
            bitwise = False
        for x, y in zip(va, vb):
            d = abs(x - y)
            if not d <= worst:  # also catches NaN
                worst, where = d, n
    print("%d tensors, max |a-b| = %.3g (%s), bitwise %s" % (len(names), worst, where or "-", bitwise))
    if args.atol == 0.0:
        return 0 if bitwise else 1
    return 0 if worst <= args.atol else 1


if __name__ == "__main__":
    sys.exit(main())
