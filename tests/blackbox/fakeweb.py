"""fakeweb.py: starts tests/fakes/fake_web.py (a local web site) for the scrape
job tests and bench, on a loopback address, and reads its request log."""

import http.client
import json
import os
import signal
import subprocess
import sys

from harness import REPO, bound, check

FAKE = os.path.join(REPO, "tests", "fakes", "fake_web.py")


class FakeWeb:
    def __init__(self, host="127.0.0.1"):
        check(host.startswith("127."), "fake web sites listen on loopback only")
        self.host = host
        self.proc = subprocess.Popen([sys.executable, FAKE, "--host", host, "--port", "0"],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        check(line.startswith("PORT "), "fake_web did not start: %r" % line)
        self.port = int(line.split()[1])
        self.base = "http://%s:%d" % (host, self.port)

    def url(self, path):
        return self.base + path

    def log(self):
        """Every path requested so far, in order."""
        c = http.client.HTTPConnection(self.host, self.port, timeout=bound(10))
        try:
            c.request("GET", "/_log")
            return json.loads(c.getresponse().read())["requests"]
        finally:
            c.close()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(bound(5))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
