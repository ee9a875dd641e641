#!/usr/bin/env python3
"""Hand-crafted bad inputs for the bad-input battery (bad_input_test.sh), standard library only.

usage: make_bad_inputs.py images OUT_DIR           odd/broken/huge image files (see IMAGES)
       make_bad_inputs.py checkpoints GOOD OUT_DIR  broken variants of a real checkpoint, one file per
                                                    case, plus OUT_DIR/cases.txt ("name mention" lines)
Checkpoint variants keep every rule but the one under test: header edits keep the data (so the
data_xxh64 checksum still holds); data edits recompute the checksum with XXH64 below.
"""
import json, math, os, struct, sys, zlib

M64 = (1 << 64) - 1
P1, P2, P3, P4, P5 = (0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9,
                      0x85EBCA77C2B2AE63, 0x27D4EB2F165667C5)


def _rotl(x, r):
    return ((x << r) | (x >> (64 - r))) & M64


def _round(acc, v):
    return (_rotl((acc + v * P2) & M64, 31) * P1) & M64


def xxh64(b, seed=0):
    """XXH64 (Collet), written from the published algorithm; cross-checked on a real checkpoint."""
    n, i = len(b), 0
    if n >= 32:
        v = [(seed + P1 + P2) & M64, (seed + P2) & M64, seed, (seed - P1) & M64]
        while i + 32 <= n:
            for k in range(4):
                v[k] = _round(v[k], struct.unpack_from("<Q", b, i + 8 * k)[0])
            i += 32
        h = (_rotl(v[0], 1) + _rotl(v[1], 7) + _rotl(v[2], 12) + _rotl(v[3], 18)) & M64
        for k in range(4):
            h = ((h ^ _round(0, v[k])) * P1 + P4) & M64
    else:
        h = (seed + P5) & M64
    h = (h + n) & M64
    while i + 8 <= n:
        h = (_rotl(h ^ _round(0, struct.unpack_from("<Q", b, i)[0]), 27) * P1 + P4) & M64
        i += 8
    if i + 4 <= n:
        h = (_rotl(h ^ ((struct.unpack_from("<I", b, i)[0] * P1) & M64), 23) * P2 + P3) & M64
        i += 4
    while i < n:
        h = (_rotl(h ^ ((b[i] * P5) & M64), 11) * P1) & M64
        i += 1
    h ^= h >> 33; h = (h * P2) & M64; h ^= h >> 29; h = (h * P3) & M64; h ^= h >> 32
    return h


# ---------------------------------------------------------------- images
def _chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def png(width, height, color_type, bit_depth, rows, extra=b""):
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    raw = b"".join(b"\x00" + r for r in rows)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + extra + _chunk(b"IDAT", zlib.compress(raw, 9)) + _chunk(b"IEND", b"")


def png_header_only(width, height):
    """A valid signature + IHDR claiming width x height, then a tiny IDAT and IEND."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + _chunk(b"IEND", b"")


def png_bomb(side):
    """A valid all-zero gray PNG of side x side pixels compressed to a few tens of KB."""
    c = zlib.compressobj(9)
    row = b"\x00" * (side + 1)
    parts = [c.compress(row) for _ in range(side)] + [c.flush()]
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", b"".join(parts)) + _chunk(b"IEND", b"")


def images(out):
    """Writes OUT/<name> for every odd or broken image. Good-but-unusual ones are decodable."""
    os.makedirs(out, exist_ok=True)
    s = 8
    gray = [bytes((x * 30 + y * 7) % 256 for x in range(s)) for y in range(s)]
    files = {
        # decodable, unusual (catalogue B.25, B.28)
        "ok_gray16.png": png(s, s, 0, 16, [bytes(v for p in r for v in (p, p)) for r in gray]),
        "ok_rgba.png": png(s, s, 6, 8, [bytes(v for p in r for v in (p, 255 - p, p // 2, 200)) for r in gray]),
        "ok_rgb.png": png(s, s, 2, 8, [bytes(v for p in r for v in (p, p, 255 - p)) for r in gray]),
        "ok_palette.png": png(s, s, 3, 8, [bytes(p % 4 for p in r) for r in gray],
                              extra=_chunk(b"PLTE", bytes([0, 0, 0, 255, 0, 0, 0, 255, 0, 255, 255, 255]))),
        "ok_1x1.png": png(1, 1, 0, 8, [b"\x80"]),
        "ok_wide.png": png(13, 3, 0, 8, [bytes(range(i, i + 13)) for i in range(3)]),
        "ok_big.png": png(40, 40, 0, 8, [bytes((x ^ y) & 255 for x in range(40)) for y in range(40)]),
        # broken (B.20-B.24)
        "bad_text.png": b"<html><body>404 Not Found</body></html>\n",
        "bad_empty.png": b"",
        "bad_truncated.png": png(s, s, 0, 8, gray)[:40],
        "bad_gif.png": b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,"
                       b"\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;",
        "bad_bmp.png": b"BM" + struct.pack("<IHHI", 58, 0, 0, 54) + struct.pack("<IiiHHIIiiII", 40, 1, 1, 1, 24, 0, 4, 0, 0, 0, 0) + b"\x00\x00\xff\x00",
        "bad_huge_ihdr.png": png_header_only(100000, 100000),
        "bad_8192.png": png_header_only(8192, 8192),
        "bad_bomb.png": png_bomb(8000),
        "bad_jpeg_trunc.jpg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xdb\x00C\x00",
    }
    for name, data in files.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


# ---------------------------------------------------------------- checkpoints
def read_st(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    return json.loads(b[8:8 + n]), b[8 + n:]


def write_st(path, header, data, raw_header=None, length=None, fix_sum=False):
    if fix_sum:
        header["__metadata__"]["data_xxh64"] = "%016x" % xxh64(data)
    h = raw_header if raw_header is not None else json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h) if length is None else length) + h + data)


def checkpoints(good, out):
    os.makedirs(out, exist_ok=True)
    header, data = read_st(good)
    meta = header["__metadata__"]
    assert meta.get("data_xxh64") == "%016x" % xxh64(data), "XXH64 of this script disagrees with the writer"
    names = sorted((k for k in header if k != "__metadata__"), key=lambda k: header[k]["data_offsets"][0])
    model = [k for k in names if k.startswith("model.")]
    two_d = next(k for k in model if len(header[k]["shape"]) == 2 and header[k]["shape"][0] != header[k]["shape"][1])
    by_size = {}
    for k in names:
        o = header[k]["data_offsets"]
        by_size.setdefault(o[1] - o[0], []).append(k)
    same = next(v for v in by_size.values() if len(v) >= 2)
    last = names[-1]
    cases = []

    def case(name, mention, **kw):
        h = json.loads(json.dumps(header))
        edit = kw.pop("edit", None)
        d = kw.pop("data", data)
        if edit:
            edit(h, None)
        write_st(os.path.join(out, name + ".safetensors"), h, bytes(d), **kw)
        cases.append((name, mention))

    def raw(name, mention, blob):
        open(os.path.join(out, name + ".safetensors"), "wb").write(blob)
        cases.append((name, mention))

    text = json.dumps(header, separators=(",", ":")).encode()
    raw("hdr_len_max", "header", struct.pack("<Q", M64) + text + data)
    raw("hdr_len_past_eof", "header", struct.pack("<Q", len(text) + len(data) + 1) + text + data)
    raw("hdr_not_utf8", "UTF-8", struct.pack("<Q", len(text)) + text.replace(b"vit-train-ckpt", b"vit-train-ckp\xff", 1) + data)
    raw("hdr_not_brace", "{", struct.pack("<Q", len(text)) + b"[" + text[1:] + data)
    raw("hdr_nul", "", struct.pack("<Q", len(text) + 8) + text + b"   \x00    " + data)
    raw("hdr_bad_json", "", struct.pack("<Q", len(text)) + text[:-1] + b"," + data)
    entry = json.dumps({last: header[last]}, separators=(",", ":"))[1:-1].encode()
    raw("dup_key", "duplicate", struct.pack("<Q", len(text) + len(entry) + 1) + b"{" + entry + b"," + text[1:] + data)

    def set_off(k, b, e):
        return lambda h, d: h[k].update(data_offsets=[b, e])
    a, b2 = same[0], same[1]
    case("overlap", b2 if header[b2]["data_offsets"][0] > header[a]["data_offsets"][0] else a,
         edit=lambda h, d: h[b2].update(data_offsets=list(header[a]["data_offsets"])))
    lb, le = header[last]["data_offsets"]
    case("gap", last, edit=lambda h, d: h[last].update(data_offsets=[lb + 4, le + 4]), data=data + b"\0\0\0\0")
    case("out_of_range", last, edit=set_off(last, lb + 4, le + 4))
    case("huge_offset", last, edit=set_off(last, lb, 2 ** 63))
    case("end_before_begin", last, edit=set_off(last, le, lb))
    case("bytes_vs_shape", two_d, edit=lambda h, d: h[two_d].update(shape=[header[two_d]["shape"][0] + 1, header[two_d]["shape"][1]]))
    case("shape_overflow", two_d, edit=lambda h, d: h[two_d].update(shape=[2 ** 62, 2 ** 62, 16]))
    case("negative_dim", two_d, edit=lambda h, d: h[two_d].update(shape=[-1, header[two_d]["shape"][1]]))
    case("rank5", two_d, edit=lambda h, d: h[two_d].update(shape=[1, 1, 1] + header[two_d]["shape"]))
    raw("trailing_bytes", "", open(good, "rb").read() + b"\0" * 8)
    r0, c0 = header[two_d]["shape"]
    case("dtype_f16", "F16", edit=lambda h, d: h[two_d].update(dtype="F16", shape=[r0, 2 * c0]))
    case("bad_name", "", edit=lambda h, d: h.__setitem__("model.bad/name", h.pop(last)))
    case("wrong_shape", two_d[len("model."):], edit=lambda h, d: h[two_d].update(shape=list(reversed(header[two_d]["shape"]))))
    # drop a model tensor from the middle: later offsets move down by its size
    gone = model[len(model) // 2]
    gb, ge = header[gone]["data_offsets"]

    def drop(h, d):
        h.pop(gone)
        for k, e in h.items():
            if k != "__metadata__" and e["data_offsets"][0] >= ge:
                e["data_offsets"] = [e["data_offsets"][0] - (ge - gb), e["data_offsets"][1] - (ge - gb)]
    case("missing_tensor", gone[len("model."):], edit=drop, data=data[:gb] + data[ge:], fix_sum=True)
    case("extra_tensor", "extra", edit=lambda h, d: h.__setitem__("model.extra", {"dtype": "F32", "shape": [1], "data_offsets": [len(data), len(data) + 4]}),
         data=data + b"\0\0\0\0", fix_sum=True)
    first_model = header[model[0]]["data_offsets"][0]
    case("nan_weight", "", data=data[:first_model] + struct.pack("<f", math.nan) + data[first_model + 4:], fix_sum=True)
    case("inf_weight", "", data=data[:first_model] + struct.pack("<f", math.inf) + data[first_model + 4:], fix_sum=True)
    v = next((k for k in names if ".v." in k and k.startswith("optim.")), None)
    if v:
        vb = header[v]["data_offsets"][0]
        case("negative_adam_v", v, data=data[:vb] + struct.pack("<f", -1.0) + data[vb + 4:], fix_sum=True)
    case("checksum_flip", "checksum", data=data[:-3] + bytes([data[-3] ^ 0x10]) + data[-2:])
    case("format_version_2", "newer", edit=lambda h, d: h["__metadata__"].update(format_version="2"))
    case("format_unknown", "format", edit=lambda h, d: h["__metadata__"].update(format="pt"))
    case("meta_not_string", "__metadata__", raw_header=text.replace(b'"format_version":"1"', b'"format_version":1'))
    ts = json.loads(meta["train_state"])
    ts["surprise"] = 1
    case("train_state_unknown_key", "surprise", edit=lambda h, d: h["__metadata__"].update(train_state=json.dumps(ts)))
    case("config_broken", "config", edit=lambda h, d: h["__metadata__"].update(config=meta["config"][:-1]))
    case("classes_broken", "classes", edit=lambda h, d: h["__metadata__"].update(classes="[1,2"))
    with open(os.path.join(out, "cases.txt"), "w") as f:
        for name, mention in cases:
            f.write("%s %s\n" % (name, mention))


if __name__ == "__main__":
    if sys.argv[1] == "images":
        images(sys.argv[2])
    elif sys.argv[1] == "checkpoints":
        checkpoints(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
