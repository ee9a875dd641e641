#!/usr/bin/env python3
"""Convert Fashion-MNIST IDX files (Debian's dataset-fashion-mnist) to PNG image folders.

  --full OUT      all 60k train / 10k test images -> OUT/{train,test}/<class>/NNNNN.png
  --subset OUT    the bundled sample: first --per-class images of each class from the official
                  train set -> OUT/train, first --val-per-class of the test set -> OUT/val

Standard library only (gzip + zlib; PNGs are written by hand as 8-bit grayscale), so it runs on
any python3. NNNNN is the image's index in its IDX file. Output is deterministic (fixed zlib
level), and the run is idempotent: a finished folder carries a stamp with the parameters and a
second run with the same parameters does nothing. Not a general image tool.
"""
import argparse
import gzip
import os
import shutil
import struct
import sys
import zlib

SRC_DIR = "/usr/share/datasets/fashion-mnist"
# Fashion-MNIST label order (Xiao et al. 2017); folder names are readable, file-system safe.
CLASS_NAMES = ["t-shirt_top", "trouser", "pullover", "dress", "coat",
               "sandal", "shirt", "sneaker", "bag", "ankle_boot"]
STAMP = ".fmnist_to_folders.stamp"


def read_idx(path, expected_magic):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack(">I", data[:4])[0]
    if magic != expected_magic:
        sys.exit(f"{path}: bad IDX magic {magic:#x}")
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return dims, data[4 + 4 * ndim:]


def load_split(prefix, src_dir):
    (n, rows, cols), pixels = read_idx(os.path.join(src_dir, f"{prefix}-images-idx3-ubyte.gz"), 0x803)
    (nl,), labels = read_idx(os.path.join(src_dir, f"{prefix}-labels-idx1-ubyte.gz"), 0x801)
    if nl != n or len(pixels) != n * rows * cols:
        sys.exit(f"{prefix}: inconsistent IDX sizes")
    return n, rows, cols, pixels, labels


def png_gray8(width, height, pixels):
    """Encode a width x height 8-bit grayscale PNG (filter 0 on every row)."""
    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body +
                struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))
    raw = b"".join(b"\x00" + pixels[r * width:(r + 1) * width] for r in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) +
            chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def write_split(out_dir, split, indices_by_class, rows, cols, pixels):
    size = rows * cols
    count = 0
    for label, indices in enumerate(indices_by_class):
        class_dir = os.path.join(out_dir, split, CLASS_NAMES[label])
        os.makedirs(class_dir, exist_ok=True)
        for i in indices:
            data = png_gray8(cols, rows, pixels[i * size:(i + 1) * size])
            with open(os.path.join(class_dir, f"{i:05d}.png"), "wb") as f:
                f.write(data)
            count += 1
    return count


def pick(labels, per_class):
    """First per_class indices of each label in file order (None: all)."""
    chosen = [[] for _ in CLASS_NAMES]
    for i, label in enumerate(labels):
        if per_class is None or len(chosen[label]) < per_class:
            chosen[label].append(i)
    for label, c in enumerate(chosen):
        if per_class is not None and len(c) < per_class:
            sys.exit(f"class {CLASS_NAMES[label]} has only {len(c)} images")
    return chosen


def convert(out_dir, plan, src_dir):
    """plan: [(split name in OUT, IDX prefix, per-class count or None)]"""
    stamp_text = repr(plan) + "\n"
    stamp_path = os.path.join(out_dir, STAMP)
    if os.path.exists(stamp_path) and open(stamp_path).read() == stamp_text:
        print(f"{out_dir}: already converted ({plan}); nothing to do")
        return
    for split, _, _ in plan:  # start clean so stale files from other parameters never linger
        shutil.rmtree(os.path.join(out_dir, split), ignore_errors=True)
    for split, prefix, per_class in plan:
        _, rows, cols, pixels, labels = load_split(prefix, src_dir)
        n = write_split(out_dir, split, pick(labels, per_class), rows, cols, pixels)
        print(f"{out_dir}/{split}: {n} images from {prefix}")
    with open(stamp_path, "w") as f:
        f.write(stamp_text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--full", metavar="OUT", help="all images -> OUT/train, OUT/test")
    mode.add_argument("--subset", metavar="OUT", help="class-balanced sample -> OUT/train, OUT/val")
    ap.add_argument("--per-class", type=int, default=500, help="subset: train images per class")
    ap.add_argument("--val-per-class", type=int, default=100, help="subset: val images per class")
    ap.add_argument("--src", default=SRC_DIR, help="folder with the *-idx*-ubyte.gz files")
    args = ap.parse_args()
    if args.full:
        convert(args.full, [("train", "train", None), ("test", "t10k", None)], args.src)
    else:
        convert(args.subset, [("train", "train", args.per_class),
                              ("val", "t10k", args.val_per_class)], args.src)


if __name__ == "__main__":
    main()
