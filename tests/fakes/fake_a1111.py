#!/usr/bin/env python3
"""fake_a1111.py: a stand-in for AUTOMATIC1111's webui API (started with
--api) or stable-diffusion.cpp's sd-server, for testing setforge's a1111
backend without a GPU.

It speaks the real wire shapes (modules/api/api.py and models.py of
stable-diffusion-webui; examples/server of stable-diffusion.cpp):
POST /sdapi/v1/txt2img answers {"images": [base64 PNG], "parameters": echo,
"info": "<JSON string with seed, all_seeds, all_prompts, infotexts...>"};
errors go through webui's exception handler shape {"error", "detail",
"body", "errors"}; GET /sdapi/v1/sd-models, /samplers, /loras, /progress and
POST /sdapi/v1/interrupt exist. The PNG is real: one solid colour from the
seed, of the requested size (flavor sdcpp rounds sizes up to 64, as
sd-server may).

Faults, chosen with --mode or POST /_fake/mode {"mode": ..., "delay_ms": N,
"flavor": "a1111"|"sdcpp", "empty_info": bool, "auth": "user:pass"|null,
"hang_after": N}:
  ok, slow (delay_ms, ends early on /interrupt), fail500 (txt2img answers
  500 while the health route /sdapi/v1/sd-models still answers 200),
  badbase64, jpeg, truncated, invalidjson, hang (never answers), hangafter
  (the first hang_after txt2img calls are answered as in ok, every later
  one hangs), close (drops the connection mid-answer), drop (reads the
  txt2img request whole, then closes the connection without a byte of
  answer: a server killed mid-item).
A hung call ends when the client gives up: its request entry then gets
"t_closed", the time the client closed the connection.
GET /_fake/requests returns every request received (method, path, auth
header, JSON body, t_received); POST /_fake/reset forgets them. Prints
"listening PORT".
"""
import argparse
import base64
import json
import os
import select
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.dont_write_bytecode = True  # keep tests/fakes/ free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_png import JPEG_BYTES, make_png  # noqa: E402

MODES = {"ok", "slow", "fail500", "badbase64", "jpeg", "truncated", "invalidjson",
         "hang", "hangafter", "close", "drop"}
SAMPLERS = ["DPM++ 2M", "DPM++ SDE", "Euler a", "Euler", "LMS", "Heun", "DDIM", "UniPC"]
MODEL = {
    "title": "v1-5-pruned-emaonly.safetensors [6ce0161689]",
    "model_name": "v1-5-pruned-emaonly",
    "hash": "6ce0161689",
    "sha256": "6ce0161689b3853acaa03779ec93eafe75a02f4ced659bee03f50797806fa2fa",
    "filename": "/models/Stable-diffusion/v1-5-pruned-emaonly.safetensors",
    "config": None,
}


class State:
    def __init__(self, args):
        self.lock = threading.Lock()
        self.mode = args.mode
        self.delay_ms = args.delay_ms
        self.flavor = args.flavor
        self.empty_info = False
        self.auth = args.auth
        self.hang_after = args.hang_after
        self.txt2img_calls = 0
        self.requests = []
        self.interrupted = threading.Event()


STATE = None


def webui_error(status, detail, errors=None):
    # modules/api/api.py handle_exception: vars(e) of the exception.
    return status, {"error": "HTTPException" if status < 500 else "RuntimeError",
                    "detail": detail, "body": "",
                    "errors": errors if errors is not None else "%d: %s" % (status, detail)}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # uvicorn and aiohttp set TCP_NODELAY; without it the body written after
    # the headers waits for the client's delayed ACK (40 ms) on a kept-alive
    # connection.
    disable_nagle_algorithm = True
    server_version = "uvicorn"
    sys_version = ""

    def log_message(self, fmt, *args):
        pass

    def handle_one_request(self):
        # "Received" is when the request's first bytes arrive, before Python
        # parses it: the GPU-busy benchmark measures the client's gap, not
        # this server's parsing time under CPU contention.
        try:
            self.rfile.peek(1)
        except (OSError, ValueError):
            pass
        self.t_arrived = time.time()
        super().handle_one_request()

    # ---- plumbing ----
    def send_json(self, status, obj, extra_headers=None):
        data = json.dumps(obj).encode()
        self.send_raw(status, data, "application/json", extra_headers)

    def send_raw(self, status, data, ctype, extra_headers=None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra_headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (a canceled or timed-out job): not our error.
            self.close_connection = True

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")

    def handle_any(self, method):
        self.t_received = self.t_arrived
        raw = self.read_body()
        path = self.path.split("?", 1)[0]
        if path.startswith("/_fake/"):
            return self.control(method, path, raw)
        try:
            body = json.loads(raw) if raw else None
            body_ok = True
        except ValueError:
            body, body_ok = raw.decode("utf-8", "replace"), False
        entry = {"method": method, "path": self.path,
                 "authorization": self.headers.get("Authorization"),
                 "content_type": self.headers.get("Content-Type"),
                 "body": body, "t_received": self.t_received, "peer": self.client_address[1]}
        self.entry = entry
        with STATE.lock:
            STATE.requests.append(entry)
            mode, delay_ms, flavor = STATE.mode, STATE.delay_ms, STATE.flavor
            if (method, path) == ("POST", "/sdapi/v1/txt2img"):
                STATE.txt2img_calls += 1
                if mode == "hangafter":
                    mode = "hang" if STATE.txt2img_calls > STATE.hang_after else "ok"
        try:
            return self.route(method, path, body, body_ok, raw, mode, delay_ms, flavor)
        finally:
            entry["t_done"] = time.time()  # for the GPU-busy benchmark

    def route(self, method, path, body, body_ok, raw, mode, delay_ms, flavor):
        if STATE.auth and path.startswith("/sdapi/"):
            want = "Basic " + base64.b64encode(STATE.auth.encode()).decode()
            if self.headers.get("Authorization") != want:
                st, obj = webui_error(401, "Incorrect username or password")
                return self.send_json(st, obj, {"WWW-Authenticate": "Basic"})
        route = (method, path)
        if route == ("POST", "/sdapi/v1/txt2img"):
            return self.txt2img(body, body_ok, raw, mode, delay_ms, flavor)
        if route == ("GET", "/sdapi/v1/sd-models"):
            return self.send_json(200, [MODEL])
        if route == ("GET", "/sdapi/v1/samplers"):
            return self.send_json(200, [{"name": s, "aliases": [], "options": {}} for s in SAMPLERS])
        if route == ("GET", "/sdapi/v1/loras"):
            return self.send_json(200, [{"name": "detail", "alias": "detail",
                                         "path": "/models/Lora/detail.safetensors", "metadata": {}}])
        if route == ("GET", "/sdapi/v1/progress"):
            return self.send_json(200, {"progress": 0.0, "eta_relative": 0.0,
                                        "state": {"skipped": False, "interrupted": False,
                                                  "job": "", "job_count": 0,
                                                  "job_timestamp": "0", "job_no": 0,
                                                  "sampling_step": 0, "sampling_steps": 0},
                                        "current_image": None, "textinfo": None})
        if route == ("POST", "/sdapi/v1/interrupt"):
            STATE.interrupted.set()
            return self.send_json(200, {})
        self.send_json(404, {"detail": "Not Found"})

    def control(self, method, path, raw):
        if method == "GET" and path == "/_fake/requests":
            with STATE.lock:
                return self.send_json(200, list(STATE.requests))
        if method == "POST" and path == "/_fake/reset":
            with STATE.lock:
                STATE.requests.clear()
            STATE.interrupted.clear()
            return self.send_json(200, {"ok": True})
        if method == "POST" and path == "/_fake/mode":
            req = json.loads(raw or b"{}")
            mode = req.get("mode", "ok")
            if mode not in MODES:
                return self.send_json(400, {"error": "unknown mode %s" % mode})
            with STATE.lock:
                STATE.mode = mode
                STATE.delay_ms = int(req.get("delay_ms", STATE.delay_ms))
                STATE.flavor = req.get("flavor", STATE.flavor)
                STATE.empty_info = bool(req.get("empty_info", False))
                STATE.hang_after = int(req.get("hang_after", STATE.hang_after))
                if "auth" in req:
                    STATE.auth = req["auth"]
            STATE.interrupted.clear()
            return self.send_json(200, {"mode": mode})
        self.send_json(404, {"error": "no such control route"})

    def hang_until_client_leaves(self):
        """Never answers; returns once the client has closed the connection
        (its timeout, or a cancel), noting when in the request's entry."""
        while True:
            readable, _, _ = select.select([self.connection], [], [], 0.05)
            if not readable:
                continue
            try:
                data = self.connection.recv(1, socket.MSG_PEEK)
            except OSError:
                data = b""
            if not data:
                self.entry["t_closed"] = time.time()
                self.close_connection = True
                return
            time.sleep(0.05)  # bytes of a next request: still hanging

    # ---- txt2img ----
    def txt2img(self, req, body_ok, raw, mode, delay_ms, flavor):
        if not body_ok or not isinstance(req, dict):
            if flavor == "sdcpp":
                return self.send_json(500, {"error": "server_error",
                                            "message": "invalid JSON body"})
            return self.send_json(422, {"detail": [{"loc": ["body", 0],
                                                    "msg": "Expecting value",
                                                    "type": "value_error.jsondecode"}]})
        if flavor == "sdcpp" and not req.get("prompt"):
            return self.send_json(400, {"error": "invalid_request_error",
                                        "message": "prompt required"})
        if flavor == "a1111" and req.get("sampler_name", "Euler a") not in SAMPLERS:
            st, obj = webui_error(404, "Sampler not found")
            return self.send_json(st, obj)
        if mode == "fail500":
            st, obj = webui_error(500, "", "CUDA out of memory. Tried to allocate 2.00 GiB")
            return self.send_json(st, obj)
        if mode == "hang":
            return self.hang_until_client_leaves()
        if mode == "drop":
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if mode == "slow":
            end = time.time() + delay_ms / 1000.0
            while time.time() < end and not STATE.interrupted.is_set():
                time.sleep(0.01)
        seed = int(req.get("seed", -1))
        if seed == -1:
            seed = 987654321  # "random", as webui picks one for -1
        w, h = int(req.get("width", 512)), int(req.get("height", 512))
        if flavor == "sdcpp":
            w, h = (w + 63) // 64 * 64, (h + 63) // 64 * 64
        png = make_png(w, h, seed)
        if mode == "jpeg":
            png = JPEG_BYTES
        elif mode == "truncated":
            png = png[: len(png) // 2]
        b64 = base64.b64encode(png).decode()
        if mode == "badbase64":
            b64 = "iVBORw0KGgo$$$ not base64 !!!"
        prompt, neg = req.get("prompt", ""), req.get("negative_prompt", "")
        infotext = "%s\nNegative prompt: %s\nSteps: %s, Sampler: %s, CFG scale: %s, Seed: %d, Size: %dx%d" % (
            prompt, neg, req.get("steps"), req.get("sampler_name"), req.get("cfg_scale"), seed, w, h)
        if flavor == "sdcpp":
            info = "" if STATE.empty_info else json.dumps({"seed": seed, "all_seeds": [seed]})
        else:
            info = json.dumps({
                "prompt": prompt, "all_prompts": [prompt], "negative_prompt": neg,
                "all_negative_prompts": [neg], "seed": seed, "all_seeds": [seed],
                "subseed": 1234, "all_subseeds": [1234], "subseed_strength": 0,
                "width": w, "height": h, "sampler_name": req.get("sampler_name"),
                "cfg_scale": req.get("cfg_scale"), "steps": req.get("steps"),
                "batch_size": 1, "restore_faces": False, "face_restoration_model": None,
                "sd_model_name": MODEL["model_name"], "sd_model_hash": MODEL["hash"],
                "sd_vae_name": None, "sd_vae_hash": None, "seed_resize_from_w": -1,
                "seed_resize_from_h": -1, "denoising_strength": None,
                "extra_generation_params": {}, "index_of_first_image": 0,
                "infotexts": [infotext], "styles": [], "job_timestamp": "20250101120000",
                "clip_skip": 1, "is_using_inpainting_conditioning": False,
                "version": "v1.10.1"})
        answer = {"images": [b64], "parameters": req, "info": info}
        data = json.dumps(answer).encode()
        if mode == "invalidjson":
            data = data[: len(data) // 3]
        if mode == "close":
            # Headers promise the whole answer; a third of it arrives.
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 3])
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(2)
            except OSError:
                pass
            return
        self.send_raw(200, data, "application/json")


def main():
    global STATE
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--mode", default="ok", choices=sorted(MODES))
    ap.add_argument("--delay-ms", type=int, default=2000)
    ap.add_argument("--flavor", default="a1111", choices=["a1111", "sdcpp"])
    ap.add_argument("--auth", help="user:pass, like webui's --api-auth")
    ap.add_argument("--hang-after", type=int, default=0,
                    help="mode hangafter: txt2img calls answered before every later one hangs")
    ap.add_argument("--no-nodelay", action="store_true",
                    help="leave Nagle on, as sd-server (cpp-httplib) does")
    args = ap.parse_args()
    if args.no_nodelay:
        Handler.disable_nagle_algorithm = False
    STATE = State(args)
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.daemon_threads = True
    print("listening %d" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
