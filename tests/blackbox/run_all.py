"""Runs every tests/blackbox/test_*.py in its own process and sums the
RESULT lines. Exit status 1 when any file failed.

    SETFORGE_BIN=./setforge python3 tests/blackbox/run_all.py [test_x.py ...]
"""

import glob
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    files = sys.argv[1:] or sorted(glob.glob(os.path.join(HERE, "test_*.py")))
    passed = failed = 0
    bad_files = []
    t0 = time.time()
    for f in files:
        path = f if os.path.exists(f) else os.path.join(HERE, f)
        try:
            p = subprocess.run([sys.executable, path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               timeout=300)
            out = p.stdout.decode("utf-8", "replace")
            rc = p.returncode
        except subprocess.TimeoutExpired as e:
            out = (e.stdout or b"").decode("utf-8", "replace") + "\nTIMEOUT after 300s\n"
            rc = 1
        sys.stdout.write(out)
        m = re.search(r"^RESULT \S+ passed=(\d+) failed=(\d+)", out, re.M)
        if m:
            passed += int(m.group(1))
            failed += int(m.group(2))
        if rc != 0 or not m:
            bad_files.append(os.path.basename(path))
            if not m:
                failed += 1
    print("blackbox: %d passed, %d failed (%.1fs)%s" % (passed, failed, time.time() - t0,
                                                        " in " + ", ".join(bad_files) if bad_files else ""))
    sys.exit(1 if failed or bad_files else 0)


if __name__ == "__main__":
    main()
