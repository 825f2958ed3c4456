#!/usr/bin/env python3
"""fake_gpus.py: many simulated A1111 GPU servers in one asyncio process, for the scale
figure of bench/endpoints.py (tests/fakes/fake_a1111.py is one thread-per-request server
per port, far too heavy for a thousand).

Each of --count ports speaks the part of the A1111 API setforge uses: POST
/sdapi/v1/txt2img answers after --delay-ms with {"images": [base64 PNG], "parameters",
"info": "{\\"seed\\": N}"}, one request at a time per port like a GPU (a second one waits
in line); GET /sdapi/v1/sd-models answers for the breaker's probe. HTTP/1.1 keep-alive,
Content-Length bodies only. The PNGs are 64x64 solid colours, 256 of them precomputed
(tests/fakes/gen_png.py), chosen by seed.

Busy time is measured per port as in bench/endpoints.py: request complete (head and body
read) -> answer written. Prints "listening [PORT, ...]" once every port listens; on
SIGTERM, or when stdin closes, writes {"spans": [[[t_received, t_done], ...] per port],
"gaps_ms": [...]} to --out and exits.
"""
import argparse
import asyncio
import base64
import json
import os
import re
import signal
import socket
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fakes"))
from gen_png import make_png  # noqa: E402

PNGS = [base64.b64encode(make_png(64, 64, s)).decode() for s in range(256)]
MODELS = json.dumps([{"title": "fake.safetensors [0000000000]", "model_name": "fake", "hash": "0000000000",
                      "sha256": "0" * 64, "filename": "/models/fake.safetensors", "config": None}]).encode()
SEED_RE = re.compile(rb'"seed"\s*:\s*(-?\d+)')


class Port:
    def __init__(self):
        self.lock = asyncio.Lock()
        self.spans = []  # (request complete, answer written), one per image
        self.prev_done = None
        self.gaps = []


def answer(status, body, ctype=b"application/json"):
    return (b"HTTP/1.1 %d OK\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n" % (status, ctype, len(body))) + body


async def serve_conn(port, delay, reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            m = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
            body = await reader.readexactly(int(m.group(1))) if m else b""
            line = head.split(b"\r\n", 1)[0]
            if line.startswith(b"POST /sdapi/v1/txt2img"):
                async with port.lock:
                    t = time.time()
                    if port.prev_done is not None:
                        port.gaps.append((t - port.prev_done) * 1000)
                    s = SEED_RE.search(body)
                    seed = int(s.group(1)) if s else 0
                    await asyncio.sleep(delay)
                    out = json.dumps({"images": [PNGS[seed % 256]], "parameters": {},
                                      "info": json.dumps({"seed": seed})}).encode()
                    writer.write(answer(200, out))
                    await writer.drain()
                    done = time.time()
                    port.spans.append((t, done))
                    port.prev_done = done
            elif line.startswith(b"GET /sdapi/v1/sd-models"):
                writer.write(answer(200, MODELS))
                await writer.drain()
            else:
                writer.write(answer(404, b'{"detail": "Not Found"}'))
                await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def main_async(args):
    ports = [Port() for _ in range(args.count)]
    servers = []
    for i, p in enumerate(ports):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))  # the kernel's pick: free, and outside the tests' port range
        sock.listen(64)
        servers.append(await asyncio.start_server(
            lambda r, w, p=p: serve_conn(p, args.delay_ms / 1000.0, r, w), sock=sock))
    print("listening " + json.dumps([s.sockets[0].getsockname()[1] for s in servers]), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not os.read(sys.stdin.fileno(), 1) else None)
    await stop.wait()
    with open(args.out, "w") as f:
        json.dump({"spans": [p.spans for p in ports], "gaps_ms": [g for p in ports for g in p.gaps]}, f)
    for s in servers:
        s.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--delay-ms", type=int, default=1000)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
