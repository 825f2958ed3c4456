#!/usr/bin/env python3
"""Black-box tests of the "parameters" text chunk setforge writes into every
stored image (issue 10, "Honest metadata in every PNG"), read back with the
rules of AUTOMATIC1111's own reader (parse_generation_parameters in
modules/infotext_utils.py, reimplemented below): the last line holds at
least 3 "key: value" pairs, a quoted value is unquoted, "Size" splits into
Size-1 and Size-2, the lines before it are the prompt and, after
"Negative prompt:", the negative prompt.

Covers: an A1111 image carries the prompt with its LoRA tags as applied, the
negative prompt, steps, the sampler, model and model hash and version the
server named, the seed and size it answered with, and the endpoint; a
prompt that is not Latin-1 goes in an iTXt chunk, a Latin-1 one in tEXt;
the server's own parameters chunk is replaced, not doubled; the stored file
is the stamped one (its sha256 is the image's); a procedural image gets the
same layout.
"""
import hashlib
import json
import os
import re
import struct
import sys
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Daemon, check, eq, expect_json, run, test, wait_run  # noqa: E402
from test_endpoints import Fake, config_file, generate, items_of, make_template  # noqa: E402

# modules/infotext_utils.py
RE_PARAM = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
RE_IMAGESIZE = re.compile(r"^(\d+)x(\d+)$")


def parse_generation_parameters(x):
    res = {}
    prompt = negative = ""
    done_with_prompt = False
    *lines, lastline = x.strip().split("\n")
    if len(RE_PARAM.findall(lastline)) < 3:
        lines.append(lastline)
        lastline = ""
    for line in lines:
        line = line.strip()
        if line.startswith("Negative prompt:"):
            done_with_prompt = True
            line = line[16:].strip()
        if done_with_prompt:
            negative += ("" if negative == "" else "\n") + line
        else:
            prompt += ("" if prompt == "" else "\n") + line
    for k, v in RE_PARAM.findall(lastline):
        if v and v[0] == '"' and v[-1] == '"':
            v = json.loads(v)  # A1111's unquote()
        m = RE_IMAGESIZE.match(v)
        if m is not None:
            res[k + "-1"], res[k + "-2"] = m.group(1), m.group(2)
        else:
            res[k] = v
    res["Prompt"], res["Negative prompt"] = prompt, negative
    return res


def text_chunks(png):
    """(type, keyword, text) of every tEXt and iTXt chunk, CRCs checked."""
    check(png[:8] == b"\x89PNG\r\n\x1a\n", "a PNG")
    out, pos = [], 8
    while pos < len(png):
        n, kind = struct.unpack(">I4s", png[pos:pos + 8])
        data = png[pos + 8:pos + 8 + n]
        crc, = struct.unpack(">I", png[pos + 8 + n:pos + 12 + n])
        eq(crc, zlib.crc32(kind + data) & 0xffffffff, "CRC of %s" % kind)
        if kind == b"tEXt":
            k, v = data.split(b"\0", 1)
            out.append(("tEXt", k.decode("latin-1"), v.decode("latin-1")))
        elif kind == b"iTXt":
            k, rest = data.split(b"\0", 1)
            check(rest[0] == 0, "iTXt uncompressed")
            _lang, _tk, text = rest[2:].split(b"\0", 2)
            out.append(("iTXt", k.decode("latin-1"), text.decode("utf-8")))
        pos += 12 + n
        if kind == b"IEND":
            break
    return out


def image_of(d, run_id, index=0):
    item = [i for i in items_of(d, run_id) if i["index"] == index][0]
    img = expect_json(d.get("/api/images/%d" % item["image_id"]), 200)
    png = d.get("/api/images/%d/file" % item["image_id"]).body
    eq(hashlib.sha256(png).hexdigest(), img["sha256"], "the stored file is the stamped one")
    return img, png


@test
def a1111_image_reads_back_with_a1111s_rules():
    fake = Fake("fake_a1111.py")
    cfg = config_file([{"name": "gpu", "type": "a1111", "url": fake.url, "timeout_s": 10}])
    d = Daemon(extra_args=["--config", cfg, "--access-log", "false"])
    try:
        tid = make_template(d, 2, width=64, height=64, loras=[{"name": "ink_style", "weight": 0.7}])
        run_id = generate(d, tid, user_theme="Tokyo, 東京", negative_prompt="blurry: text", steps=12,
                          guidance_scale=6.5, seed=77)
        eq(wait_run(d, run_id)["status"], "completed", "run")
        img, png = image_of(d, run_id)
        chunks = [c for c in text_chunks(png) if c[1] == "parameters"]
        eq(len(chunks), 1, "one parameters chunk (the server's own replaced)")
        kind, _, text = chunks[0]
        eq(kind, "iTXt", "a prompt that is not Latin-1 goes in iTXt")
        p = parse_generation_parameters(text)
        check(p["Prompt"].startswith(img["prompt"]), "prompt: %r vs %r" % (p["Prompt"], img["prompt"]))
        check(p["Prompt"].endswith("<lora:ink_style:0.7>"), "LoRA tag as applied: %r" % p["Prompt"])
        eq(p["Negative prompt"], "blurry: text", "negative prompt")
        eq((p["Steps"], p["CFG scale"], p["Seed"]), ("12", "6.5", str(img["seed"])), "steps, cfg, seed")
        eq((p["Size-1"], p["Size-2"]), (str(img["width"]), str(img["height"])), "size")
        eq((p["Model hash"], p["Model"], p["Version"]), ("6ce0161689", "v1-5-pruned-emaonly", "v1.10.1"),
           "what the server said it used")
        check(p.get("Sampler"), "the sampler the server named: %s" % p)
        eq(p["Backend"], "a1111 gpu", "the endpoint that drew it")
    finally:
        d.cleanup()
        fake.stop()
        os.unlink(cfg)


@test
def procedural_latin1_prompt_goes_in_text():
    d = Daemon(examples=False)
    try:
        t = expect_json(d.post("/api/batch-templates", {
            "name": "café", "prompt_template": "a café named {name}", "csv": "name\nÉtoile\n",
            "width": 64, "height": 64}), 201)
        r = expect_json(d.post("/api/batch-templates/%d/generate" % t["id"],
                               {"album_name": "a", "user_theme": "crème"}), 202)["run"]
        eq(wait_run(d, r["id"])["status"], "completed", "run")
        img, png = image_of(d, r["id"])
        chunks = [c for c in text_chunks(png) if c[1] == "parameters"]
        eq([c[0] for c in chunks], ["tEXt"], "one Latin-1 tEXt chunk")
        p = parse_generation_parameters(chunks[0][2])
        eq(p["Prompt"], img["prompt"], "prompt")
        eq((p["Sampler"], p["Seed"], p["Size-1"], p["Size-2"]), ("procedural", str(img["seed"]), "64", "64"),
           "sampler, seed, size")
        check(p["Version"].startswith("setforge"), "version: %s" % p["Version"])
    finally:
        d.cleanup()


if __name__ == "__main__":
    run(__file__)
