#!/usr/bin/env python3
"""fake_comfyui.py: a stand-in for a ComfyUI server, for testing setforge's
comfyui backend without a GPU.

It speaks ComfyUI's real wire shapes (server.py, execution.py):
  POST /prompt {"prompt": graph, "client_id"} -> {"prompt_id", "number",
       "node_errors": {}}; a bad graph -> 400 {"error": {"type", "message",
       "details", "extra_info"}, "node_errors": {id: {"errors": [...],
       "dependent_outputs", "class_type"}}}
  GET  /history/<id> -> {} until done, then {id: {"prompt", "outputs":
       {node: {"images": [{"filename", "subfolder", "type"}]}}, "status":
       {"status_str", "completed", "messages"}, "meta"}}
  GET  /view?filename=&subfolder=&type=, POST /interrupt ({"prompt_id"}
       optional), GET/POST /queue ({"delete": [...]}), GET /system_stats,
       GET /object_info; every route also under /api/.
One worker thread runs queued prompts in order, as ComfyUI does. The graph
is validated the way ComfyUI's validate_prompt would for the node classes a
txt2img workflow uses: known class, required inputs, links to existing
nodes, output index in range and matching types (MODEL into model, ...), so
a wrongly rewired LoRA chain is rejected with node_errors. The image is a
real PNG of the EmptyLatentImage's size, one colour from the sampler's seed.

Faults, chosen with --mode or POST /_fake/mode {"mode": ..., "delay_ms": N}:
  ok, slow (runs delay_ms), fail500, jpeg (/view answers a JPEG), truncated,
  invalidjson (/prompt answers broken JSON), hang (the prompt never
  finishes until interrupted or deleted), close (/prompt drops the
  connection), node_errors (400 with a node error), exec_error (the prompt
  fails while running).
The websocket GET /ws?clientId=<id> (also /api/ws) is ComfyUI's (server.py
websocket_handler and send_sync; execution.py): an RFC 6455 handshake
(Sec-WebSocket-Accept from the key), a "status" message first, then for a
prompt queued with that client_id: "execution_start", "executing" {node},
per step "progress" {value, max, prompt_id, node} and a binary preview
frame (4 bytes big-endian event type 1 = PREVIEW_IMAGE, 4 bytes image type
1 = JPEG, the bytes), "execution_success" (or "execution_error" /
"execution_interrupted"), then the history entry is written and "executing"
{node: null, prompt_id} sent, in ComfyUI's order. A slow prompt's steps
(KSampler's "steps") are spread evenly over delay_ms. Mode keys and flags:
"previews": false / --no-previews (progress without preview frames),
"no_ws": true / --no-ws (/ws answers 404, as behind a proxy without
websockets: clients must poll /history). GET /_fake/ws lists the websocket
connections ({client_id, opened, closed, sent}).
GET /_fake/requests returns every request received (method, path, JSON
body); POST /_fake/reset forgets them. Prints "listening PORT" on start.
"""
import argparse
import base64
import hashlib
import json
import struct
import os
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

sys.dont_write_bytecode = True  # keep tests/fakes/ free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_png import JPEG_BYTES, make_png  # noqa: E402

MODES = {"ok", "slow", "fail500", "jpeg", "truncated", "invalidjson", "hang", "close",
         "node_errors", "exec_error"}

# class -> (output types, {required input: type}); "*" = a literal.
NODES = {
    "CheckpointLoaderSimple": (["MODEL", "CLIP", "VAE"], {"ckpt_name": "*"}),
    "LoraLoader": (["MODEL", "CLIP"], {"model": "MODEL", "clip": "CLIP", "lora_name": "*",
                                       "strength_model": "*", "strength_clip": "*"}),
    "CLIPTextEncode": (["CONDITIONING"], {"text": "*", "clip": "CLIP"}),
    "EmptyLatentImage": (["LATENT"], {"width": "*", "height": "*", "batch_size": "*"}),
    "LatentUpscale": (["LATENT"], {"samples": "LATENT", "upscale_method": "*", "width": "*",
                                   "height": "*", "crop": "*"}),
    "KSampler": (["LATENT"], {"model": "MODEL", "seed": "*", "steps": "*", "cfg": "*",
                              "sampler_name": "*", "scheduler": "*", "positive": "CONDITIONING",
                              "negative": "CONDITIONING", "latent_image": "LATENT",
                              "denoise": "*"}),
    "KSamplerAdvanced": (["LATENT"], {"model": "MODEL", "add_noise": "*", "noise_seed": "*",
                                      "steps": "*", "cfg": "*", "sampler_name": "*",
                                      "scheduler": "*", "positive": "CONDITIONING",
                                      "negative": "CONDITIONING", "latent_image": "LATENT",
                                      "start_at_step": "*", "end_at_step": "*",
                                      "return_with_leftover_noise": "*"}),
    "VAEDecode": (["IMAGE"], {"samples": "LATENT", "vae": "VAE"}),
    "SaveImage": ([], {"images": "IMAGE", "filename_prefix": "*"}),
    "PreviewImage": ([], {"images": "IMAGE"}),
}
OUTPUT_NODES = {"SaveImage", "PreviewImage"}


class Job:
    def __init__(self, pid, number, graph, client_id, mode, delay_ms):
        self.id, self.number, self.graph, self.client_id = pid, number, graph, client_id
        self.mode, self.delay_ms = mode, delay_ms
        self.interrupted = False
        self.outputs_to_execute = [k for k, n in graph.items() if n["class_type"] in OUTPUT_NODES]

    def queue_entry(self):
        return [self.number, self.id, self.graph, {"client_id": self.client_id},
                self.outputs_to_execute]


class State:
    def __init__(self, args):
        self.lock = threading.Condition()
        self.mode, self.delay_ms = args.mode, args.delay_ms
        self.requests = []
        self.pending, self.running = [], None
        self.history, self.images = {}, {}
        self.number = 0
        self.counter = 0
        self.previews = True
        self.no_ws = False
        self.sockets = {}  # client_id -> [WsConn]
        self.ws_log = []


STATE = None


def now_ms():
    return int(time.time() * 1000)


def node_error(node_id, cls, typ, message, details, extra=None):
    return {node_id: {"errors": [{"type": typ, "message": message, "details": details,
                                  "extra_info": extra or {}}],
                      "dependent_outputs": [], "class_type": cls}}


def validate(graph):
    """Returns None, or (error dict, node_errors dict) the way ComfyUI's
    validate_prompt reports them."""
    if not isinstance(graph, dict):
        return ({"type": "invalid_prompt", "message": "Invalid prompt",
                 "details": "prompt is not an object", "extra_info": {}}, {})
    for nid, node in graph.items():
        if not isinstance(node, dict) or "class_type" not in node:
            return ({"type": "invalid_prompt",
                     "message": "Cannot execute because a node is missing the class_type property.",
                     "details": "Node ID '#%s'" % nid, "extra_info": {}}, {})
        if node["class_type"] not in NODES:
            return ({"type": "invalid_prompt",
                     "message": "Cannot execute because node %s does not exist." % node["class_type"],
                     "details": "Node ID '#%s'" % nid, "extra_info": {}}, {})
    outputs = [k for k, n in graph.items() if n["class_type"] in OUTPUT_NODES]
    if not outputs:
        return ({"type": "prompt_no_outputs", "message": "Prompt has no outputs",
                 "details": "", "extra_info": {}}, [])
    errors = {}
    for nid, node in graph.items():
        cls = node["class_type"]
        inputs = node.get("inputs", {})
        for name, want in NODES[cls][1].items():
            if name not in inputs:
                errors.update(node_error(nid, cls, "required_input_missing",
                                         "Required input is missing", name,
                                         {"input_name": name}))
                break
            v = inputs[name]
            if want == "*":
                if isinstance(v, list):
                    errors.update(node_error(nid, cls, "bad_linked_input",
                                             "Bad linked input, must be a length-2 list of [string, int]",
                                             name))
                    break
                continue
            if not (isinstance(v, list) and len(v) == 2 and isinstance(v[0], str)
                    and isinstance(v[1], int)):
                errors.update(node_error(nid, cls, "bad_linked_input",
                                         "Bad linked input, must be a length-2 list of [string, int]",
                                         name))
                break
            src = graph.get(v[0])
            if src is None:
                errors.update(node_error(nid, cls, "invalid_input_type",
                                         "Node %s linked to by %s does not exist" % (v[0], nid),
                                         name))
                break
            outs = NODES[src["class_type"]][0]
            if v[1] < 0 or v[1] >= len(outs) or outs[v[1]] != want:
                got = outs[v[1]] if 0 <= v[1] < len(outs) else "(none)"
                errors.update(node_error(nid, cls, "return_type_mismatch",
                                         "Return type mismatch between linked nodes",
                                         "%s, received_type(%s) mismatch input_type(%s)" % (name, got, want)))
                break
    if errors:
        return ({"type": "prompt_outputs_failed_validation",
                 "message": "Prompt outputs failed validation", "details": "",
                 "extra_info": {}}, errors)
    return None


def first_of(graph, classes):
    for k in sorted(graph, key=lambda s: (not s.isdigit(), int(s) if s.isdigit() else 0, s)):
        if graph[k]["class_type"] in classes:
            return graph[k]
    return None


def finish(job):
    """Writes the history entry of a job that ran (or failed, or was interrupted)."""
    ts = now_ms()
    msgs = [["execution_start", {"prompt_id": job.id, "timestamp": ts}],
            ["execution_cached", {"nodes": [], "prompt_id": job.id, "timestamp": ts}]]
    entry = {"prompt": job.queue_entry(), "outputs": {}, "meta": {}}
    sampler_id = next((k for k, n in job.graph.items()
                       if n["class_type"] in ("KSampler", "KSamplerAdvanced")), "3")
    if job.interrupted:
        msgs.append(["execution_interrupted", {"prompt_id": job.id, "node_id": sampler_id,
                                               "node_type": job.graph[sampler_id]["class_type"],
                                               "executed": [], "timestamp": ts}])
        entry["status"] = {"status_str": "error", "completed": False, "messages": msgs}
    elif job.mode == "exec_error":
        msgs.append(["execution_error", {
            "prompt_id": job.id, "node_id": sampler_id,
            "node_type": job.graph[sampler_id]["class_type"], "executed": ["4", "5", "6", "7"],
            "exception_message": "mat1 and mat2 shapes cannot be multiplied (154x2048 and 768x320)\n",
            "exception_type": "RuntimeError",
            "traceback": ["  File \"execution.py\", line 323, in execute\n"],
            "current_inputs": {}, "current_outputs": {}, "timestamp": ts}])
        entry["status"] = {"status_str": "error", "completed": False, "messages": msgs}
    else:
        sampler = first_of(job.graph, ("KSampler", "KSamplerAdvanced"))
        latent = first_of(job.graph, ("EmptyLatentImage",))
        seed = sampler["inputs"].get("seed", sampler["inputs"].get("noise_seed", 0))
        w, h = latent["inputs"]["width"], latent["inputs"]["height"]
        png = make_png(w, h, seed)
        if job.mode == "jpeg":
            png = JPEG_BYTES
        elif job.mode == "truncated":
            png = png[: len(png) // 2]
        for nid in job.outputs_to_execute:
            node = job.graph[nid]
            typ = "output" if node["class_type"] == "SaveImage" else "temp"
            with STATE.lock:
                STATE.counter += 1
                fn = "%s_%05d_.png" % (node["inputs"].get("filename_prefix", "ComfyUI"), STATE.counter)
                STATE.images[(fn, "", typ)] = png
            entry["outputs"][nid] = {"images": [{"filename": fn, "subfolder": "", "type": typ}]}
            entry["meta"][nid] = {"node_id": nid, "display_node": nid, "parent_node": None,
                                  "real_node_id": nid}
        msgs.append(["execution_success", {"prompt_id": job.id, "timestamp": ts}])
        entry["status"] = {"status_str": "success", "completed": True, "messages": msgs}
    with STATE.lock:
        STATE.history[job.id] = entry


WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class WsConn:
    """One websocket connection: frames out (server frames are not masked)."""

    def __init__(self, sock, client_id):
        self.sock, self.client_id = sock, client_id
        self.lock = threading.Lock()
        self.closed = False
        self.log = {"client_id": client_id, "opened": time.time(), "closed": None, "sent": 0}

    def frame(self, opcode, payload):
        n = len(payload)
        if n < 126:
            head = struct.pack(">BB", 0x80 | opcode, n)
        elif n < 65536:
            head = struct.pack(">BBH", 0x80 | opcode, 126, n)
        else:
            head = struct.pack(">BBQ", 0x80 | opcode, 127, n)
        with self.lock:
            if self.closed:
                return
            try:
                self.sock.sendall(head + payload)
                self.log["sent"] += 1
            except OSError:
                self.closed = True

    def send_json(self, kind, data):
        self.frame(1, json.dumps({"type": kind, "data": data}).encode())


def send_sync(kind, data, client_id):
    """server.py send_sync: to the prompt's client only (None: everyone)."""
    with STATE.lock:
        conns = list(STATE.sockets.get(client_id, [])) if client_id else \
            [c for cs in STATE.sockets.values() for c in cs]
    for c in conns:
        if kind == "preview":
            c.frame(2, data)
        else:
            c.send_json(kind, data)


def preview_frame(step):
    """BinaryEventTypes.PREVIEW_IMAGE (1), image type 1 (JPEG), the bytes."""
    jpeg = JPEG_BYTES[:-2] + bytes([step % 256]) + b"\xff\xd9"
    return struct.pack(">II", 1, 1) + jpeg


def worker():
    while True:
        with STATE.lock:
            while not STATE.pending:
                STATE.lock.wait()
            job = STATE.pending.pop(0)
            STATE.running = job
        sampler_id = next((k for k, n in job.graph.items()
                           if n["class_type"] in ("KSampler", "KSamplerAdvanced")), None)
        steps = int(job.graph[sampler_id]["inputs"].get("steps", 20)) if sampler_id else 20
        cid = job.client_id
        send_sync("execution_start", {"prompt_id": job.id, "timestamp": now_ms()}, cid)
        send_sync("executing", {"node": sampler_id, "display_node": sampler_id, "prompt_id": job.id}, cid)
        t0 = time.time()
        if job.mode == "hang":
            end = float("inf")
        elif job.mode == "slow":
            end = t0 + job.delay_ms / 1000.0
        else:
            end = t0 + 0.01
        last = 0
        while time.time() < end and not job.interrupted:
            if job.mode == "slow":
                step = min(steps, int((time.time() - t0) / (job.delay_ms / 1000.0) * steps))
                if step != last:
                    last = step
                    send_sync("progress", {"value": step, "max": steps, "prompt_id": job.id,
                                           "node": sampler_id}, cid)
                    if STATE.previews:
                        send_sync("preview", preview_frame(step), cid)
            time.sleep(0.005)
        if job.interrupted:
            send_sync("execution_interrupted", {"prompt_id": job.id, "node_id": sampler_id,
                                                "node_type": "KSampler", "executed": [],
                                                "timestamp": now_ms()}, cid)
        elif job.mode == "exec_error":
            send_sync("execution_error", {"prompt_id": job.id, "node_id": sampler_id,
                                          "node_type": "KSampler", "exception_message": "boom",
                                          "exception_type": "RuntimeError", "timestamp": now_ms()}, cid)
        else:
            send_sync("execution_success", {"prompt_id": job.id, "timestamp": now_ms()}, cid)
        finish(job)
        send_sync("executing", {"node": None, "prompt_id": job.id}, cid)
        with STATE.lock:
            STATE.running = None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # uvicorn and aiohttp set TCP_NODELAY; without it the body written after
    # the headers waits for the client's delayed ACK (40 ms) on a kept-alive
    # connection.
    disable_nagle_algorithm = True
    server_version = "Python/3.11 aiohttp/3.9.5"
    sys_version = ""

    def log_message(self, fmt, *args):
        pass

    def send_json(self, status, obj):
        self.send_raw(status, json.dumps(obj).encode(), "application/json")

    def send_raw(self, status, data, ctype):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (a canceled or timed-out job): not our error.
            self.close_connection = True

    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")

    def handle_any(self, method):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        url = urlsplit(self.path)
        path = url.path
        if path.startswith("/_fake/"):
            return self.control(method, path, raw)
        if path.startswith("/api/"):
            path = path[4:]
        if method == "GET" and path == "/ws":
            return self.websocket(parse_qs(url.query).get("clientId", [""])[0])
        try:
            body = json.loads(raw) if raw else None
            body_ok = True
        except ValueError:
            body, body_ok = raw.decode("utf-8", "replace"), False
        with STATE.lock:
            STATE.requests.append({"method": method, "path": self.path, "body": body})
            mode, delay_ms = STATE.mode, STATE.delay_ms
        q = parse_qs(url.query, keep_blank_values=True)
        if method == "POST" and path == "/prompt":
            return self.prompt(body, body_ok, mode, delay_ms)
        if method == "GET" and path.startswith("/history"):
            with STATE.lock:
                if path == "/history":
                    return self.send_json(200, dict(STATE.history))
                pid = path[len("/history/"):]
                e = STATE.history.get(pid)
                return self.send_json(200, {pid: e} if e else {})
        if method == "GET" and path == "/view":
            key = (q.get("filename", [""])[0], q.get("subfolder", [""])[0],
                   q.get("type", ["output"])[0])
            with STATE.lock:
                data = STATE.images.get(key)
            if data is None:
                return self.send_raw(404, b"404: Not Found", "text/plain")
            ctype = "image/jpeg" if data.startswith(b"\xff\xd8") else "image/png"
            return self.send_raw(200, data, ctype)
        if method == "POST" and path == "/interrupt":
            want = body.get("prompt_id") if isinstance(body, dict) else None
            with STATE.lock:
                if STATE.running and (want is None or want == STATE.running.id):
                    STATE.running.interrupted = True
            return self.send_raw(200, b"", "text/plain")
        if path == "/queue":
            with STATE.lock:
                if method == "GET":
                    return self.send_json(200, {
                        "queue_running": [STATE.running.queue_entry()] if STATE.running else [],
                        "queue_pending": [j.queue_entry() for j in STATE.pending]})
                if isinstance(body, dict):
                    if body.get("clear"):
                        STATE.pending.clear()
                    for d in body.get("delete", []):
                        STATE.pending = [j for j in STATE.pending if j.id != d]
            return self.send_raw(200, b"", "text/plain")
        if method == "GET" and path == "/system_stats":
            return self.send_json(200, {
                "system": {"os": "posix", "ram_total": 67108864000, "ram_free": 60000000000,
                           "comfyui_version": "0.3.60", "python_version": sys.version,
                           "pytorch_version": "2.7.1+cu128", "embedded_python": False,
                           "argv": ["main.py", "--listen"]},
                "devices": [{"name": "cuda:0 Fake GPU : cudaMallocAsync", "type": "cuda",
                             "index": 0, "vram_total": 25757220864, "vram_free": 25000000000,
                             "torch_vram_total": 0, "torch_vram_free": 0}]})
        if method == "GET" and path == "/object_info":
            return self.send_json(200, {k: {"input": {"required": {i: [t] for i, t in v[1].items()}},
                                            "output": v[0], "name": k,
                                            "output_node": k in OUTPUT_NODES}
                                        for k, v in NODES.items()})
        self.send_raw(404, b"404: Not Found", "text/plain")

    def websocket(self, client_id):
        with STATE.lock:
            STATE.requests.append({"method": "GET", "path": self.path, "body": None})
            no_ws = STATE.no_ws
        key = self.headers.get("Sec-WebSocket-Key")
        if no_ws or not key or (self.headers.get("Upgrade") or "").lower() != "websocket":
            return self.send_raw(404, b"404: Not Found", "text/plain")
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.wfile.flush()
        conn = WsConn(self.connection, client_id or uuid.uuid4().hex)
        with STATE.lock:
            STATE.sockets.setdefault(conn.client_id, []).append(conn)
            STATE.ws_log.append(conn.log)
        conn.send_json("status", {"status": {"exec_info": {"queue_remaining": len(STATE.pending)}},
                                  "sid": conn.client_id})
        try:
            self.read_frames(conn)
        finally:
            conn.closed = True
            conn.log["closed"] = time.time()
            with STATE.lock:
                STATE.sockets.get(conn.client_id, []).remove(conn)
            self.close_connection = True

    def read_frames(self, conn):
        """The client's frames (masked): close ends, ping is answered."""
        while True:
            head = self.rfile.read(2)
            if len(head) < 2:
                return
            opcode, n = head[0] & 0x0F, head[1] & 0x7F
            if n == 126:
                n = struct.unpack(">H", self.rfile.read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self.rfile.read(8))[0]
            mask = self.rfile.read(4) if head[1] & 0x80 else b"\0\0\0\0"
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(self.rfile.read(n)))
            if opcode == 8:
                conn.frame(8, data[:2])
                return
            if opcode == 9:
                conn.frame(10, data)

    def prompt(self, body, body_ok, mode, delay_ms):
        if mode == "fail500":
            return self.send_raw(500, b"500 Internal Server Error\n\nServer got itself in trouble",
                                 "text/plain")
        if mode == "close":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "200")
            self.end_headers()
            self.wfile.write(b'{"prompt_id": "')
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(2)
            except OSError:
                pass
            return
        if not body_ok or not isinstance(body, dict) or "prompt" not in body:
            return self.send_json(400, {"error": {"type": "no_prompt",
                                                  "message": "No prompt provided",
                                                  "details": "No prompt provided",
                                                  "extra_info": {}}, "node_errors": []})
        graph = body["prompt"]
        bad = validate(graph)
        if bad is None and mode == "node_errors":
            ck = next((k for k, n in graph.items()
                       if n["class_type"] == "CheckpointLoaderSimple"), "4")
            bad = ({"type": "prompt_outputs_failed_validation",
                    "message": "Prompt outputs failed validation", "details": "",
                    "extra_info": {}},
                   node_error(ck, "CheckpointLoaderSimple", "value_not_in_list",
                              "Value not in list",
                              "ckpt_name: 'v1-5-pruned-emaonly.safetensors' not in "
                              "['sd_xl_base_1.0.safetensors']",
                              {"input_name": "ckpt_name"}))
        if bad is not None:
            return self.send_json(400, {"error": bad[0], "node_errors": bad[1]})
        if mode == "invalidjson":
            return self.send_raw(200, b'{"prompt_id": "abc", "number": ', "application/json")
        pid = body.get("prompt_id") or str(uuid.uuid4())
        with STATE.lock:
            number = STATE.number
            STATE.number += 1
            STATE.pending.append(Job(pid, number, graph, body.get("client_id"), mode, delay_ms))
            STATE.lock.notify_all()
        self.send_json(200, {"prompt_id": pid, "number": number, "node_errors": {}})

    def control(self, method, path, raw):
        if method == "GET" and path == "/_fake/requests":
            with STATE.lock:
                return self.send_json(200, list(STATE.requests))
        if method == "GET" and path == "/_fake/ws":
            with STATE.lock:
                return self.send_json(200, list(STATE.ws_log))
        if method == "POST" and path == "/_fake/reset":
            with STATE.lock:
                STATE.requests.clear()
            return self.send_json(200, {"ok": True})
        if method == "POST" and path == "/_fake/mode":
            req = json.loads(raw or b"{}")
            mode = req.get("mode", "ok")
            if mode not in MODES:
                return self.send_json(400, {"error": "unknown mode %s" % mode})
            with STATE.lock:
                STATE.mode = mode
                STATE.delay_ms = int(req.get("delay_ms", STATE.delay_ms))
                if "previews" in req:
                    STATE.previews = bool(req["previews"])
                if "no_ws" in req:
                    STATE.no_ws = bool(req["no_ws"])
                # A mode switch also ends whatever a previous test left hanging.
                if STATE.running and STATE.running.mode == "hang":
                    STATE.running.interrupted = True
            return self.send_json(200, {"mode": mode})
        self.send_json(404, {"error": "no such control route"})


def main():
    global STATE
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--mode", default="ok", choices=sorted(MODES))
    ap.add_argument("--delay-ms", type=int, default=2000)
    ap.add_argument("--no-ws", action="store_true", help="/ws answers 404")
    ap.add_argument("--no-previews", action="store_true", help="progress without preview frames")
    args = ap.parse_args()
    STATE = State(args)
    STATE.no_ws, STATE.previews = args.no_ws, not args.no_previews
    threading.Thread(target=worker, daemon=True).start()
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.daemon_threads = True
    print("listening %d" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
