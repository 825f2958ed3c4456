#!/usr/bin/env python3
"""fake_web.py: a local web site for the scrape job tests and bench (stdlib only).

    fake_web.py --host 127.0.0.1 [--port 0]     prints "PORT <n>" when it listens

It serves only the loopback address it is given (127.0.0.1, or 127.0.0.2 for
the redirect case), and logs every request so a test can tell what was
fetched and how often: GET /_log answers {"requests": ["/img/a.png", ...]}.

Pages (text/html):
  /page/mixed.html      relative, absolute, protocol-relative and srcset images,
                        a <picture>, og:image, a link to an image, duplicates,
                        a 404, a 50 MiB image, HTML posing as image/png, a
                        redirect chain of 5, a drip, a JPEG, a GIF and a WebP
  /page/base.html       a <base href> that moves every relative URL
  /page/many.html?n=N   N images (/img/m<i>.png)
  /page/slow.html?n=N&delay_ms=D   N images that each take D ms
  /page/bench.html?n=N&kb=K        N distinct PNGs of K KiB each
  /page/empty.html      no image at all
  /page/flaky.html?tag=T  five /flaky/ images: 503 once, 502 twice, a closed
                        connection once, 503 nine times, 404 once
  /page/refused.html?port=P        images on 127.0.0.1:P (for a guard that refuses it)
Images:
  /img/<name>.png|.jpg|.gif|.webp  a small image whose bytes depend on <name>
  /slow/<name>.png?delay_ms=D      the same after D ms
  /big/<name>.png?kb=K             a PNG padded to K KiB (a tEXt chunk)
  /same/<name>.png                 always the same bytes (content duplicates)
  /huge.png                        50 MiB, no Content-Length
  /posing.png                      an HTML page sent as image/png
  /drip.png                        one byte a second
  /missing.png                     404
  /redirect/<n>.png                302 to /redirect/<n-1>.png; /redirect/0.png is an image
  /to/<port>/<name>.png            302 to http://127.0.0.1:<port>/img/<name>.png
  /goto?u=<url>                    302 to <url> (file:///etc/passwd, gopher://...)
  /flaky/<name>.png?fail=N&status=S  status S (503 when absent; 0: the connection is
                                   closed without an answer) the first N times it is
                                   asked for, then the image
"""
import argparse
import hashlib
import json
import struct
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

FLAKY = {}  # path -> times asked
LOG = []
LOG_MU = threading.Lock()


def _chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def make_png(name, width=4, height=3, pad=0):
    """A real PNG, one colour from name; pad bytes of tEXt make it bigger."""
    c = hashlib.sha256(name.encode()).digest()[:3]
    raw = b"".join(b"\x00" + c * width for _ in range(height))
    out = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    if pad > 0:
        seed = hashlib.sha256(name.encode()).digest()
        filler = (seed * (pad // len(seed) + 1))[:pad]
        out += _chunk(b"tEXt", b"pad\x00" + filler.hex().encode()[:pad])
    return out + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b"")


def make_jpeg(name, width=40, height=30):
    body = hashlib.sha256(name.encode()).digest()
    return (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
            b"\xff\xc0\x00\x11\x08" + struct.pack(">HH", height, width) + b"\x03\x01\x11\x00\x02\x11\x01\x03\x11\x01"
            b"\xff\xfe" + struct.pack(">H", len(body) + 2) + body + b"\xff\xd9")


def make_gif(name, width=5, height=6):
    body = hashlib.sha256(name.encode()).digest()
    return b"GIF89a" + struct.pack("<HH", width, height) + b"\x00\x00\x00" + b"\x21\xfe" + bytes([len(body)]) + body + b"\x00;"


def make_webp(name, width=7, height=8):
    body = hashlib.sha256(name.encode()).digest()
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\x00\x00\x00\x00" + \
        struct.pack("<I", width - 1)[:3] + struct.pack("<I", height - 1)[:3]
    extra = b"EXIF" + struct.pack("<I", len(body)) + body
    payload = b"WEBP" + vp8x + extra
    return b"RIFF" + struct.pack("<I", len(payload)) + payload


MIXED = """<!doctype html>
<html><head><meta charset="utf-8"><title>mixed</title>
<meta property="og:image" content="/img/og.png">
</head><body>
<img src="../img/rel.png">
<img src="http://{host}:{port}/img/abs.png">
<img src="//{host}:{port}/img/proto.png">
<img src="/img/small.png" srcset="/img/small.png 1x, /img/large.png 2x">
<img srcset="/img/w300.png 300w, /img/w900.png 900w, /img/w600.png 600w">
<picture><source srcset="/img/pic.webp 1x"><img src="/img/pic-fallback.png"></picture>
<a href="/img/linked.jpg">a photo</a> <a href="/page/other.html">another page</a>
<img src="/img/rel.png">
<img src="/img/anim.gif">
<img src="/same/one.png"><img src="/same/two.png">
<img src="/missing.png">
<img src="/huge.png">
<img src="/posing.png">
<img src="/redirect/5.png">
<img src="/redirect/2.png">
<img src="/drip.png">
</body></html>
"""

BASE = """<!doctype html><html><head><base href="/img/sub/"></head>
<body><img src="b1.png"><img src="../b2.png"><img src="/img/b3.png"></body></html>"""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, fmt, *args):
        pass

    def send(self, status, ctype, body, extra=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        u = urlparse(self.path)
        q = {k: v[0] for k, v in parse_qs(u.query).items()}
        p = u.path
        if p == "/_log":
            with LOG_MU:
                body = json.dumps({"requests": list(LOG)}).encode()
            return self.send(200, "application/json", body)
        with LOG_MU:
            LOG.append(self.path)
        host, port = self.server.server_address[:2]
        try:
            return self.route(p, q, host, port)
        except (BrokenPipeError, ConnectionResetError):
            return None

    def route(self, p, q, host, port):
        if p == "/page/mixed.html":
            return self.send(200, "text/html; charset=utf-8", MIXED.format(host=host, port=port).encode())
        if p == "/page/base.html":
            return self.send(200, "text/html", BASE.encode())
        if p == "/page/flaky.html":
            t = q.get("tag", "")  # a fresh set of counters per test run
            urls = ["/flaky/%sa.png?fail=1" % t, "/flaky/%sb.png?fail=2&status=502" % t,
                    "/flaky/%sc.png?fail=1&status=0" % t, "/flaky/%sd.png?fail=9" % t,
                    "/flaky/%se.png?fail=1&status=404" % t]
            imgs = "".join('<img src="%s">\n' % u for u in urls)
            return self.send(200, "text/html", ("<html><body>%s</body></html>" % imgs).encode())
        if p == "/page/empty.html":
            return self.send(200, "text/html", b"<html><body><p>no pictures here</p></body></html>")
        if p == "/page/many.html":
            n = int(q.get("n", "2000"))
            imgs = "".join('<img src="/img/m%d.png">\n' % i for i in range(n))
            return self.send(200, "text/html", ("<html><body>%s</body></html>" % imgs).encode())
        if p == "/page/slow.html":
            n, d = int(q.get("n", "20")), q.get("delay_ms", "300")
            imgs = "".join('<img src="/slow/s%d.png?delay_ms=%s">\n' % (i, d) for i in range(n))
            return self.send(200, "text/html", ("<html><body>%s</body></html>" % imgs).encode())
        if p == "/page/bench.html":
            n, kb = int(q.get("n", "500")), q.get("kb", "100")
            imgs = "".join('<img src="/big/b%d.png?kb=%s">\n' % (i, kb) for i in range(n))
            return self.send(200, "text/html", ("<html><body>%s</body></html>" % imgs).encode())
        if p == "/page/refused.html":
            tp = int(q.get("port", "1"))
            imgs = '<img src="http://127.0.0.1:%d/img/x.png"><img src="/img/ok.png">' % tp
            return self.send(200, "text/html", imgs.encode())
        if p.startswith("/img/"):
            name = p[len("/img/"):]
            if name.endswith(".png"):
                return self.send(200, "image/png", make_png(name))
            if name.endswith(".jpg"):
                return self.send(200, "image/jpeg", make_jpeg(name))
            if name.endswith(".gif"):
                return self.send(200, "image/gif", make_gif(name))
            if name.endswith(".webp"):
                return self.send(200, "image/webp", make_webp(name))
            return self.send(404, "text/plain", b"no such image\n")
        if p.startswith("/flaky/"):
            with LOG_MU:
                FLAKY[p] = FLAKY.get(p, 0) + 1
                asked = FLAKY[p]
            if asked <= int(q.get("fail", "1")):
                status = int(q.get("status", "503"))
                if status == 0:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return None
                return self.send(status, "text/plain", b"try later\n")
            return self.send(200, "image/png", make_png(p))
        if p.startswith("/slow/"):
            time.sleep(int(q.get("delay_ms", "300")) / 1000.0)
            return self.send(200, "image/png", make_png(p))
        if p.startswith("/big/"):
            kb = int(q.get("kb", "100"))
            return self.send(200, "image/png", make_png(p, 16, 16, pad=kb * 1024))
        if p.startswith("/same/"):
            return self.send(200, "image/png", make_png("same"))
        if p == "/posing.png":
            return self.send(200, "image/png", b"<!doctype html><html><body>I am not a PNG</body></html>")
        if p == "/missing.png":
            return self.send(404, "text/html", b"<h1>404</h1>")
        if p.startswith("/redirect/"):
            n = int(p[len("/redirect/"):-len(".png")])
            if n <= 0:
                return self.send(200, "image/png", make_png("redirected"))
            return self.send(302, "text/plain", b"", [("Location", "/redirect/%d.png" % (n - 1))])
        if p == "/goto":
            return self.send(302, "text/plain", b"", [("Location", q.get("u", "/"))])
        if p.startswith("/to/"):
            _, _, tport, name = p.split("/", 3)
            return self.send(302, "text/plain", b"",
                             [("Location", "http://127.0.0.1:%d/img/%s" % (int(tport), name))])
        if p == "/huge.png":
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()
            head = make_png("huge")[:33]
            self.wfile.write(head)
            block = b"\x00" * (1 << 20)
            for _ in range(50):
                self.wfile.write(block)
            return None
        if p == "/drip.png":
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", "100000")
            self.end_headers()
            for b in make_png("drip")[:120]:
                self.wfile.write(bytes([b]))
                self.wfile.flush()
                time.sleep(1.0)
            return None
        return self.send(404, "text/plain", b"not found\n")

    do_HEAD = do_GET


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    a = ap.parse_args()
    if not a.host.startswith("127."):
        sys.exit("fake_web: loopback addresses only")
    srv = Server((a.host, a.port), Handler)
    print("PORT %d" % srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
