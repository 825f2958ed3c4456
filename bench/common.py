"""Shared bits of the benchmarks: start a daemon on a fresh database."""
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("SETFORGE_BIN", os.path.join(REPO, "setforge"))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Daemon:
    def __init__(self, *args):
        self.dir = tempfile.mkdtemp(prefix="sf-bench-")
        self.db = os.path.join(self.dir, "bench.db")
        self.port = free_port()
        subprocess.run([BIN, "migrate", "--db", self.db], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        out = subprocess.run([BIN, "token", "create", "--admin", "--db", self.db], check=True,
                             capture_output=True, text=True).stdout
        self.token = out.strip().splitlines()[-1]
        self.proc = subprocess.Popen([BIN, "serve", "--port", str(self.port), "--db", self.db,
                                      "--data-dir", os.path.join(self.dir, "data"), "--access-log", "false",
                                      "--generate-rate", "0"] + list(args),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            try:
                self.get("/api/health")
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("daemon did not start")

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def get(self, path):
        with urllib.request.urlopen(self.url(path), timeout=30) as r:
            return json.loads(r.read())

    def post(self, path, body, headers=None):
        req = urllib.request.Request(self.url(path), data=json.dumps(body).encode(), method="POST")
        req.add_header("Content-Type", "application/json")
        req.add_header("Authorization", "Bearer " + self.token)
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        with urllib.request.urlopen(req, timeout=120) as r:
            return json.loads(r.read())

    def rss_peak_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            m = re.search(r"VmHWM:\s+(\d+) kB", f.read())
        return int(m.group(1))

    def stop(self):
        self.proc.terminate()
        self.proc.wait(30)
        shutil.rmtree(self.dir, ignore_errors=True)
