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

Flavor sdcpp is as unkind as the real sd-server (examples/server of
stable-diffusion.cpp, and a real build): GET /sdcpp/v1/capabilities answers
200 (404 in flavor a1111); txt2img's info says "version":
"stable-diffusion.cpp"; "<lora:...>" tags in the prompt are words, LoRAs
come only in the "lora" field, by the exact path GET /sdapi/v1/loras lists
("detail.safetensors", with the extension), else HTTP 400 "invalid lora
path: X"; that list ("lora_files") is read from "disk" only when GET
/sdapi/v1/loras is called, so it starts empty and misses files added later;
sizes are aligned up to "align" (64); a seed beyond 32 bits becomes a
random one; no /sdapi/v1/interrupt. Mode keys: "lora_files": [paths],
"align": N, "broken_size": [w, h] (every image comes back that size),
"kind_loras": true (any LoRA path is taken, as the old fake did),
"no_capabilities": true (an older build without /sdcpp/v1/capabilities),
"forget_loras": true (the list is empty again, as after a restart),
"max_queue": N (img_gen answers 429 beyond N pending jobs),
"lose_jobs": true (every job is unknown to GET /sdcpp/v1/jobs/<id>: 404,
as after a restart).
sd-server's native async API is there too (unless no_capabilities):
POST /sdcpp/v1/img_gen (202 and a job id; 400 "invalid generation
parameters"; 429 when full), GET /sdcpp/v1/jobs/<id>, POST
/sdcpp/v1/jobs/<id>/cancel (200 while queued, 409 once generating: the job
runs to its end); one worker draws jobs in order (delay_ms in mode slow).
GET /_fake/jobs lists the jobs with their cancel_requests. Each
txt2img entry gets "applied_loras": the LoRA paths the fake applied.
Live steps (modules/progress.py of webui): txt2img takes "force_task_id";
while a slow txt2img runs, its step moves from 0 to "steps" evenly over
delay_ms, each step with a new live preview (a JPEG; a PNG in
/sdapi/v1/progress's current_image). POST /internal/progress {id_task,
id_live_preview, live_preview} answers {active, queued, completed,
progress, eta, live_preview (data: URL, only when changed since
id_live_preview), id_live_preview, textinfo}; GET /sdapi/v1/progress
answers the running task's state.sampling_step/sampling_steps and
current_image. Mode keys: "no_internal_progress": true (/internal/progress
is 404, as on servers without it), "no_sdapi_progress": true (so is
/sdapi/v1/progress: no steps at all), "live_previews": false (no previews).
Flavor sdcpp has neither route (404). GET /_fake/steps returns the steps
each task went through ({task_id: [[t, step], ...]}).
GET /_fake/requests returns every request received (method, path, auth
header, JSON body, t_received); POST /_fake/reset forgets them. Prints
"listening PORT".
"""
import argparse
import base64
import json
import os
import re
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


def lora_stem(path):
    """sd-server's LoRA "name": the file name without folder or extension."""
    return os.path.splitext(os.path.basename(path))[0]


def sdcpp_loras(req, refresh=False):
    """The LoRA paths of an sd-server request and the error text when one is
    not in its list (refresh: the list is read first, as img_gen does)."""
    with STATE.lock:
        if refresh:
            STATE.lora_cache = list(STATE.lora_files)
        applied = []
        for item in req.get("lora") or []:
            path = item.get("path", "") if isinstance(item, dict) else ""
            if not path:
                return applied, "lora.path required"
            if not (STATE.kind_loras or path in STATE.lora_cache):
                return applied, "invalid lora path: " + path
            applied.append(path)
    return applied, None


def drawn_size_and_seed(req, flavor):
    """The seed and size the server really draws with."""
    seed = int(req.get("seed", -1))
    if flavor == "sdcpp" and not -2**31 <= seed < 2**31:
        seed = -1  # read as a 32-bit int: out of range, it is drawn at random
    if seed == -1:
        seed = 987654321  # "random", as webui picks one for -1
    w, h = int(req.get("width", 512)), int(req.get("height", 512))
    if flavor == "sdcpp":
        a = STATE.align
        w, h = (w + a - 1) // a * a, (h + a - 1) // a * a
    if STATE.broken_size:
        w, h = int(STATE.broken_size[0]), int(STATE.broken_size[1])
    return seed, w, h


class Jobs:
    """sd-server's async job queue (async_jobs.cpp): one worker draws the
    queued jobs in order; a queued job can be cancelled, a generating one
    cannot (409); at most max_pending queued or generating (429)."""

    def __init__(self):
        self.cv = threading.Condition()
        self.jobs = {}
        self.queue = []
        self.next_id = 1
        self.max_pending = 8
        threading.Thread(target=self.worker, daemon=True).start()

    def submit(self, body, applied):
        with self.cv:
            pending = sum(1 for j in self.jobs.values() if j["status"] in ("queued", "generating"))
            if pending >= self.max_pending:
                return None
            jid = "job_%x_%08d" % (int(time.time()), self.next_id)
            self.next_id += 1
            self.jobs[jid] = {"id": jid, "kind": "img_gen", "status": "queued", "created": int(time.time()),
                              "started": None, "completed": None, "body": body, "applied_loras": applied,
                              "result": None, "error": None}
            self.queue.append(jid)
            self.cv.notify_all()
            return self.jobs[jid]

    def view(self, jid):
        with self.cv:
            job = self.jobs.get(jid)
            if job is None:
                return None
            out = {k: job[k] for k in ("id", "kind", "status", "created", "started", "completed",
                                       "result", "error")}
            out["queue_position"] = self.queue.index(jid) + 1 if jid in self.queue else 0
            return out

    def cancel(self, jid):
        with self.cv:
            job = self.jobs.get(jid)
            if job is None:
                return 404, {"error": "job not found"}
            job["cancel_requests"] = job.get("cancel_requests", 0) + 1
            if job["status"] == "queued":
                self.queue.remove(jid)
                job.update(status="cancelled", completed=int(time.time()),
                           error={"code": "cancelled", "message": "job cancelled by client"})
                return 200, self.view_locked(job)
            if job["status"] == "generating":
                return 409, {"error": "job is currently generating and cannot be interrupted yet"}
            return 200, self.view_locked(job)

    def view_locked(self, job):
        return {k: job[k] for k in ("id", "kind", "status", "created", "started", "completed",
                                    "result", "error")}

    def worker(self):
        while True:
            with self.cv:
                while not self.queue:
                    self.cv.wait()
                jid = self.queue.pop(0)
                job = self.jobs[jid]
                job.update(status="generating", started=int(time.time()), t_started=time.time())
                mode, delay_ms = STATE.mode, STATE.delay_ms
            if mode == "slow":
                time.sleep(delay_ms / 1000.0)  # no interrupt: it runs to its end
            body = job["body"]
            seed, w, h = drawn_size_and_seed(body, "sdcpp")
            with self.cv:
                job["completed"] = int(time.time())
                job["t_done"] = time.time()
                if mode == "fail500":
                    job.update(status="failed", error={"code": "generation_failed",
                                                       "message": "generate_image returned no results"})
                else:
                    png = make_png(w, h, seed)
                    job.update(status="completed", result={"output_format": "png", "images": [
                        {"index": 0, "b64_json": base64.b64encode(png).decode()}]})
                self.cv.notify_all()


class State:
    def __init__(self, args):
        self.lock = threading.Lock()
        self.mode = args.mode
        self.delay_ms = args.delay_ms
        self.flavor = args.flavor
        self.empty_info = False
        self.auth = args.auth
        self.hang_after = args.hang_after
        self.lora_files = ["detail.safetensors", "film_grain.safetensors",
                           "styles/Watercolor.safetensors"]
        self.lora_cache = []  # sd-server's list: filled by GET /sdapi/v1/loras only
        self.align = 64
        self.broken_size = None
        self.kind_loras = False
        self.no_capabilities = False
        self.lose_jobs = False
        self.jobs = Jobs()
        self.txt2img_calls = 0
        self.requests = []
        # live steps (modules/progress.py)
        self.no_internal_progress = False
        self.no_sdapi_progress = False
        self.live_previews = True
        self.current_task = None   # {"id", "step", "steps", "t0", "preview_id"}
        self.finished_tasks = []
        self.pending_tasks = set()
        self.preview_seq = 0
        self.step_log = {}
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
        if route == ("GET", "/sdapi/v1/cmd-flags"):  # A1111 and Forge only
            if flavor == "sdcpp":
                return self.send_json(404, {"error": "not found"})
            return self.send_json(200, {"api": True, "listen": True})
        if route == ("GET", "/sdapi/v1/samplers"):
            return self.send_json(200, [{"name": s, "aliases": [], "options": {}} for s in SAMPLERS])
        if route == ("GET", "/sdcpp/v1/capabilities"):
            if flavor != "sdcpp" or STATE.no_capabilities:
                return self.send_json(404, {"detail": "Not Found"})
            with STATE.lock:
                STATE.lora_cache = list(STATE.lora_files)
                loras = [{"name": lora_stem(p), "path": p} for p in STATE.lora_cache]
            return self.send_json(200, {"model": {"name": "v1-5-pruned-emaonly.safetensors"},
                                        "current_mode": "img_gen", "loras": loras,
                                        "features": {"cancel_queued": True,
                                                     "cancel_generating": False}})
        if route == ("GET", "/sdapi/v1/loras") and flavor == "sdcpp":
            with STATE.lock:
                STATE.lora_cache = list(STATE.lora_files)  # refresh_lora_cache
                loras = [{"name": lora_stem(p), "path": p} for p in STATE.lora_cache]
            return self.send_json(200, loras)
        if flavor == "sdcpp" and not STATE.no_capabilities and path.startswith("/sdcpp/v1/"):
            return self.sdcpp_native(method, path, body, body_ok)
        if route == ("POST", "/sdapi/v1/interrupt") and flavor == "sdcpp":
            return self.send_json(404, {"error": "not found"})
        if route == ("GET", "/sdapi/v1/loras"):
            return self.send_json(200, [{"name": "detail", "alias": "detail",
                                         "path": "/models/Lora/detail.safetensors", "metadata": {}}])
        if route == ("POST", "/internal/progress"):
            if flavor == "sdcpp" or STATE.no_internal_progress:
                return self.send_json(404, {"detail": "Not Found"})
            return self.internal_progress(body if isinstance(body, dict) else {})
        if route == ("GET", "/sdapi/v1/progress") and (flavor == "sdcpp" or STATE.no_sdapi_progress):
            return self.send_json(404, {"error": "not found"})
        if route == ("GET", "/sdapi/v1/progress"):
            with STATE.lock:
                cur = dict(STATE.current_task) if STATE.current_task else None
            if cur:
                png = make_png(16, 16, cur["step"]) if STATE.live_previews and cur["step"] > 0 else None
                return self.send_json(200, {
                    "progress": cur["step"] / max(cur["steps"], 1), "eta_relative": 1.0,
                    "state": {"skipped": False, "interrupted": False, "job": "txt2img",
                              "job_count": 1, "job_timestamp": "20250101120000", "job_no": 0,
                              "sampling_step": cur["step"], "sampling_steps": cur["steps"]},
                    "current_image": base64.b64encode(png).decode() if png else None,
                    "textinfo": None})
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
        if method == "GET" and path == "/_fake/jobs":
            with STATE.jobs.cv:
                return self.send_json(200, [dict(STATE.jobs.view_locked(j), cancel_requests=j.get("cancel_requests", 0),
                                                 t_started=j.get("t_started"), t_done=j.get("t_done"))
                                            for j in STATE.jobs.jobs.values()])
        if method == "GET" and path == "/_fake/requests":
            with STATE.lock:
                return self.send_json(200, list(STATE.requests))
        if method == "GET" and path == "/_fake/steps":
            with STATE.lock:
                return self.send_json(200, dict(STATE.step_log))
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
                if "lora_files" in req:
                    STATE.lora_files = list(req["lora_files"])
                if "align" in req:
                    STATE.align = int(req["align"])
                if "broken_size" in req:
                    STATE.broken_size = req["broken_size"]
                if "kind_loras" in req:
                    STATE.kind_loras = bool(req["kind_loras"])
                if "lose_jobs" in req:
                    STATE.lose_jobs = bool(req["lose_jobs"])
                if "max_queue" in req:
                    STATE.jobs.max_pending = int(req["max_queue"])
                if "no_capabilities" in req:
                    STATE.no_capabilities = bool(req["no_capabilities"])
                if "no_internal_progress" in req:
                    STATE.no_internal_progress = bool(req["no_internal_progress"])
                if "no_sdapi_progress" in req:
                    STATE.no_sdapi_progress = bool(req["no_sdapi_progress"])
                if "live_previews" in req:
                    STATE.live_previews = bool(req["live_previews"])
                if req.get("forget_loras"):
                    STATE.lora_cache = []
            STATE.interrupted.clear()
            return self.send_json(200, {"mode": mode})
        self.send_json(404, {"error": "no such control route"})

    def internal_progress(self, req):
        """modules/progress.py progressapi, for the fake's one task at a time."""
        tid = req.get("id_task")
        with STATE.lock:
            cur = dict(STATE.current_task) if STATE.current_task else None
            queued = tid in STATE.pending_tasks
            completed = tid in STATE.finished_tasks
        active = cur is not None and cur["id"] == tid
        if not active:
            return self.send_json(200, {"active": False, "queued": queued, "completed": completed,
                                        "progress": None, "eta": None, "live_preview": None,
                                        "id_live_preview": -1,
                                        "textinfo": "In queue..." if queued else "Waiting..."})
        progress = cur["step"] / max(cur["steps"], 1)
        elapsed = time.time() - cur["t0"]
        eta = elapsed / progress - elapsed if progress > 0 else None
        live, id_live = None, req.get("id_live_preview", -1)
        if (req.get("live_preview", True) and STATE.live_previews and cur["preview_id"] > 0
                and cur["preview_id"] != req.get("id_live_preview", -1)):
            jpeg = JPEG_BYTES[:-2] + bytes([cur["step"] % 256]) + b"\xff\xd9"
            live = "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()
            id_live = cur["preview_id"]
        self.send_json(200, {"active": True, "queued": False, "completed": False,
                             "progress": progress, "eta": eta, "live_preview": live,
                             "id_live_preview": id_live, "textinfo": None})

    def run_steps(self, task_id, steps, delay_ms):
        """A slow txt2img's sampler: step by step over delay_ms, each step
        with a new live preview; ends early on /interrupt."""
        t0 = time.time()
        end = t0 + delay_ms / 1000.0
        # webui's state.begin(): an interrupt ends the job it hit, not the next one.
        STATE.interrupted.clear()
        with STATE.lock:
            STATE.pending_tasks.discard(task_id)
            STATE.current_task = {"id": task_id, "step": 0, "steps": steps, "t0": t0, "preview_id": 0}
            STATE.step_log[task_id] = []
        try:
            while time.time() < end and not STATE.interrupted.is_set():
                step = min(steps, int((time.time() - t0) / (delay_ms / 1000.0) * steps))
                with STATE.lock:
                    cur = STATE.current_task
                    if step != cur["step"]:
                        STATE.preview_seq += 1
                        cur.update(step=step, preview_id=STATE.preview_seq)
                        STATE.step_log[task_id].append([time.time(), step])
                time.sleep(0.005)
        finally:
            with STATE.lock:
                STATE.current_task = None
                STATE.finished_tasks.append(task_id)
                del STATE.finished_tasks[:-16]

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

    # ---- sd-server's async jobs ----
    def sdcpp_native(self, method, path, body, body_ok):
        if (method, path) == ("POST", "/sdcpp/v1/img_gen"):
            if not body_ok or not isinstance(body, dict):
                return self.send_json(400, {"error": "invalid json"})
            applied, bad = sdcpp_loras(body, refresh=True)
            if bad or not body.get("prompt"):
                return self.send_json(400, {"error": "invalid generation parameters"})
            self.entry["applied_loras"] = applied
            job = STATE.jobs.submit(body, applied)
            if job is None:
                return self.send_json(429, {"error": "job queue is full"})
            self.entry["job_id"] = job["id"]
            return self.send_json(202, {"id": job["id"], "kind": "img_gen", "status": "queued",
                                        "created": job["created"], "poll_url": "/sdcpp/v1/jobs/" + job["id"]})
        m = re.fullmatch(r"/sdcpp/v1/jobs/([A-Za-z0-9_\-]+)(/cancel)?", path)
        if m and method == "GET" and not m.group(2):
            view = None if STATE.lose_jobs else STATE.jobs.view(m.group(1))
            return self.send_json(200, view) if view else self.send_json(404, {"error": "job not found"})
        if m and method == "POST" and m.group(2):
            st, obj = STATE.jobs.cancel(m.group(1))
            return self.send_json(st, obj)
        return self.send_json(404, {"error": "not found"})

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
        if flavor == "sdcpp":
            applied, bad = sdcpp_loras(req)
            if bad:
                return self.send_json(400, {"error": bad})
        else:
            applied = re.findall(r"<lora:([^:>]+):[^>]*>", req.get("prompt", ""))
        self.entry["applied_loras"] = applied
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
        task_id = req.get("force_task_id") or "task(fake%d)" % STATE.txt2img_calls
        if mode == "slow":
            self.run_steps(task_id, max(1, int(req.get("steps", 20))), delay_ms)
        else:
            with STATE.lock:
                STATE.finished_tasks.append(task_id)
        seed, w, h = drawn_size_and_seed(req, flavor)
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
            info = "" if STATE.empty_info else json.dumps({
                "prompt": prompt, "seed": seed, "width": int(req.get("width", 512)),
                "height": int(req.get("height", 512)), "version": "stable-diffusion.cpp",
                "all_seeds": [seed], "infotexts": [infotext]})
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
    ap.add_argument("--no-internal-progress", action="store_true",
                    help="POST /internal/progress answers 404 (only /sdapi/v1/progress)")
    ap.add_argument("--no-live-previews", action="store_true", help="progress without previews")
    args = ap.parse_args()
    if args.no_nodelay:
        Handler.disable_nagle_algorithm = False
    STATE = State(args)
    STATE.no_internal_progress = args.no_internal_progress
    STATE.live_previews = not args.no_live_previews
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.daemon_threads = True
    print("listening %d" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
