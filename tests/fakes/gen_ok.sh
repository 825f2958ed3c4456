#!/bin/sh
# gen_ok.sh: a command-backend program that succeeds, like generate.py: it
# hands all its arguments to gen_png.py, which writes the PNG and prints
# "Image saved to: PATH". exec keeps one process, so signals reach it.
exec python3 "$(dirname "$0")/gen_png.py" "$@"
