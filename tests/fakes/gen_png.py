#!/usr/bin/env python3
"""gen_png.py: a tiny PNG encoder for the fake backends, and a stand-in for
the original generate.py in the command-backend tests.

As a module: make_png(width, height, seed) returns the bytes of a real PNG
(8-bit RGB, one solid colour derived from the seed), which the fake A1111
and ComfyUI servers send back. As a program it behaves like generate.py:

    gen_png.py --output PATH --width W --height H --seed S [--prompt P]
               [--argv-log FILE] [--saved-to OTHER_PATH] [--no-saved-line]

writes the PNG to PATH (or OTHER_PATH) and prints "Image saved to: PATH".
--argv-log dumps sys.argv as JSON so a test can check that every argument
arrived as one element, untouched by any shell.
"""
import argparse
import hashlib
import json
import struct
import sys
import zlib


def colour(seed):
    d = hashlib.sha256(str(seed).encode()).digest()
    return bytes(d[:3])


def make_png(width, height, seed):
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    row = b"\x00" + colour(seed) * width
    raw = row * height
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) +
            chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


# Enough of a JPEG for "is this a PNG?" to say no: SOI, a JFIF APP0, EOI.
JPEG_BYTES = (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
              + b"\x00" * 64 + b"\xff\xd9")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--output", required=True)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--height", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--prompt", default="")
    ap.add_argument("--argv-log")
    ap.add_argument("--saved-to")
    ap.add_argument("--no-saved-line", action="store_true")
    a, _unknown = ap.parse_known_args()
    if a.argv_log:
        with open(a.argv_log, "w") as f:
            json.dump(sys.argv, f)
    path = a.saved_to or a.output
    with open(path, "wb") as f:
        f.write(make_png(a.width, a.height, a.seed))
    print("Loading pipeline components...", flush=True)
    print("100%|##########| 20/20 [00:01<00:00, 15.2it/s]", file=sys.stderr, flush=True)
    if not a.no_saved_line:
        print("Image saved to: %s" % path, flush=True)


if __name__ == "__main__":
    main()
