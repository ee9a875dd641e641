#!/usr/bin/env python3
"""Write a tiny image-folder dataset (grayscale PNGs, standard library only) for CLI tests.

usage: make_tiny_dataset.py OUT [--classes 3] [--per-class 16] [--size 8]
Class c images are noisy versions of a per-class pattern, so a model can learn them.
"""
import argparse, os, random, struct, zlib


def png_gray(width, height, pixels):
    raw = b"".join(b"\x00" + bytes(pixels[y * width:(y + 1) * width]) for y in range(height))
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--classes", type=int, default=3)
    ap.add_argument("--per-class", type=int, default=16)
    ap.add_argument("--size", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    for c in range(a.classes):
        d = os.path.join(a.out, "class_%d" % c)
        os.makedirs(d, exist_ok=True)
        pattern = [255 if ((x // 2 + y // 2 + c) % a.classes == 0) else 30 for y in range(a.size) for x in range(a.size)]
        for i in range(a.per_class):
            px = [max(0, min(255, p + rng.randint(-40, 40))) for p in pattern]
            with open(os.path.join(d, "%03d.png" % i), "wb") as f:
                f.write(png_gray(a.size, a.size, px))


if __name__ == "__main__":
    main()
