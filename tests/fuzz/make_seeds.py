#!/usr/bin/env python3
"""(Re)generates the fuzz templates and seed corpora of tests/fuzz/ (deterministic).

    python3 tests/fuzz/make_seeds.py BUILD/bin

templates/<name>/   config.json + model.safetensors of tiny checkpoints written by
                    qlc-make-checkpoint (qlc's own codecs and safetensors writer); the order of
                    templates.h's kTemplates is the order of TEMPLATES here.
corpus/qir/         every .qir of tests/lit and examples (<= 64 KiB), the malformed .qir inputs
corpus/safetensors/ the malformed safetensors inputs and the templates' model.safetensors
corpus/gguf/        the malformed GGUF inputs and small valid llama GGUFs of every importable type
corpus/config/      byte 0 = template | file << 4, then the templates' and malformed configs
corpus/import/      byte 0 = template, then [op, tensor, a, b] operations (see fuzz_import.cpp)

Files a fuzzer found (crashes, and inputs kept as regression tests) are added by hand under
corpus/<target>/regress-*; this script never deletes them.
"""
import glob
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
MALFORMED = os.path.join(ROOT, "tests", "lit", "malformed", "Inputs")
sys.path.insert(0, MALFORMED)
import make_corpus as mc  # noqa: E402  (the GGUF byte helpers)

COMMON = ["--hidden", "32", "--intermediate", "32", "--vocab", "16", "--group", "16"]
TEMPLATES = [  # name, qlc-make-checkpoint arguments; append only (see templates.h)
    ("dense", ["--scheme", "dense"]),
    ("awq", ["--scheme", "awq"]),
    ("awq-moe", ["--scheme", "awq", "--moe", "2"]),
    ("gptq", ["--scheme", "gptq"]),
    ("gptq-actorder", ["--scheme", "gptq", "--desc-act", "--asym"]),
    ("gptq-v2", ["--scheme", "gptq", "--format", "v2", "--bits", "8"]),
    ("ct", ["--scheme", "ct"]),
    ("ct-actorder", ["--scheme", "ct", "--desc-act", "--asym"]),
    ("w8a8", ["--scheme", "w8a8"]),
]
CONFIG_FILES = ["config.json", "quant_config.json", "quantize_config.json",
                "quant_model_description.json"]


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)


def seed_name(data):
    return "seed-" + hashlib.sha1(data).hexdigest()[:16]


def reset(target):
    d = os.path.join(HERE, "corpus", target)
    for p in glob.glob(os.path.join(d, "seed-*")):
        os.remove(p)
    return d


def add(d, data, name=None):
    write(os.path.join(d, name or seed_name(data)), data)


def templates(bin_dir):
    for name, args in TEMPLATES:
        out = os.path.join(HERE, "templates", name)
        shutil.rmtree(out, ignore_errors=True)
        subprocess.run([os.path.join(bin_dir, "qlc-make-checkpoint"), *args, *COMMON, "-o", out],
                       check=True, stdout=subprocess.DEVNULL)


# ggml types: id, block elements, block bytes
GGML = {"F32": (0, 1, 4), "F16": (1, 1, 2), "Q4_0": (2, 32, 18), "Q4_1": (3, 32, 20),
        "Q5_0": (6, 32, 22), "Q5_1": (7, 32, 24), "Q8_0": (8, 32, 34), "Q2_K": (10, 256, 84),
        "Q3_K": (11, 256, 110), "Q4_K": (12, 256, 144), "Q5_K": (13, 256, 176),
        "Q6_K": (14, 256, 210), "BF16": (30, 1, 2)}


def tensor_bytes(tname, ne, seed):
    _, be, bb = GGML[tname]
    n = 1
    for d in ne:
        n *= d
    size = n // be * bb
    out = bytearray(hashlib.sha256(f"{seed}".encode()).digest() * (size // 32 + 1))[:size]
    if tname in ("F32", "F16", "BF16"):
        return bytes(mc.f32s(n)[: size]) if tname == "F32" else bytes(size)
    # a small finite f16 scale (0x2c00 = 1/16) in each block's first two bytes
    for b in range(0, size, bb):
        out[b:b + 2] = b"\x00\x2c"
    return bytes(out)


def llama_gguf(wtype, hidden, inter, moe=0):
    kvs = [mc.ARCH, mc.kv_u32("llama.block_count", 1), mc.kv_u32("llama.embedding_length", hidden)]
    if moe:
        kvs += [mc.kv_u32("llama.expert_count", moe), mc.kv_u32("llama.expert_used_count", 1)]
    specs = [("token_embd.weight", [hidden, 4], "F16"),
             ("output_norm.weight", [hidden], "F32"),
             ("blk.0.ffn_norm.weight", [hidden], "F32")]
    down_t = wtype if inter % GGML[wtype][1] == 0 else "Q8_0"
    if moe:
        specs += [("blk.0.ffn_gate_inp.weight", [hidden, moe], "F32"),
                  ("blk.0.ffn_gate_exps.weight", [hidden, inter, moe], wtype),
                  ("blk.0.ffn_up_exps.weight", [hidden, inter, moe], wtype),
                  ("blk.0.ffn_down_exps.weight", [inter, hidden, moe], down_t)]
    else:
        specs += [("blk.0.ffn_gate.weight", [hidden, inter], wtype),
                  ("blk.0.ffn_up.weight", [hidden, inter], wtype),
                  ("blk.0.ffn_down.weight", [inter, hidden], down_t),
                  ("output.weight", [hidden, 4], wtype)]
    infos, data = [], b""
    for i, (name, ne, t) in enumerate(specs):
        infos.append(mc.tinfo(name, ne, GGML[t][0], len(data)))
        data += tensor_bytes(t, ne, f"{name}{t}")
        data += b"\0" * (-len(data) % 32)
    return mc.gguf(kvs, infos, data)


def gguf_corpus():
    d = reset("gguf")
    for p in sorted(glob.glob(os.path.join(MALFORMED, "gguf-*", "*.gguf"))):
        add(d, open(p, "rb").read())
    for t in GGML:
        hidden = 256 if GGML[t][1] == 256 else 64
        add(d, llama_gguf(t, hidden, 32))
    add(d, llama_gguf("Q4_0", 64, 32, moe=2))
    add(d, llama_gguf("Q4_K", 256, 32, moe=2))
    add(d, mc.tiny_moe_gguf(2, 1, 2))


def safetensors_corpus():
    d = reset("safetensors")
    for p in sorted(glob.glob(os.path.join(MALFORMED, "st-*", "*.safetensors"))):
        add(d, open(p, "rb").read())
    for name, _ in TEMPLATES:
        add(d, open(os.path.join(HERE, "templates", name, "model.safetensors"), "rb").read())


def qir_corpus():
    d = reset("qir")
    files = glob.glob(os.path.join(ROOT, "tests", "lit", "**", "*.qir"), recursive=True)
    files += glob.glob(os.path.join(ROOT, "examples", "*.qir"))
    for p in sorted(files):
        if os.path.getsize(p) <= 64 * 1024:
            add(d, open(p, "rb").read())


def config_corpus():
    d = reset("config")
    for i, (name, _) in enumerate(TEMPLATES):
        text = open(os.path.join(HERE, "templates", name, "config.json"), "rb").read()
        add(d, bytes([i]) + text)
        q = json.loads(text).get("quantization_config")
        if q:  # the same quantization config as a legacy side file
            add(d, bytes([i | 2 << 4]) + json.dumps(q, indent=1).encode())
    for p in sorted(glob.glob(os.path.join(MALFORMED, "cfg-*", "*.json"))):
        base = os.path.basename(p)
        if base in CONFIG_FILES:
            add(d, bytes([CONFIG_FILES.index(base) << 4]) + open(p, "rb").read())


def import_corpus():
    d = reset("import")
    for i, (name, _) in enumerate(TEMPLATES):
        add(d, bytes([i]))
        raw = open(os.path.join(HERE, "templates", name, "model.safetensors"), "rb").read()
        header = json.loads(raw[8:8 + struct.unpack("<Q", raw[:8])[0]])
        n = len([k for k in header if k != "__metadata__"])
        for k in range(max(n, 0)):
            add(d, bytes([i, 0, k, 0, 0]))        # drop a tensor (a part goes missing)
            add(d, bytes([i, 7, k, 0, 0xFF]))     # fill it with 0xFF (g_idx out of range, ...)
            add(d, bytes([i, 2, k, 0, 3]))        # its first dim becomes 3
        add(d, bytes([i, 8, 0, 0, 4]))            # bits := 3
        add(d, bytes([i, 8, 1, 0, 14]))           # group_size := -1
        add(d, bytes([i, 8, 1, 0, 12]))           # group_size := 128


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    templates(sys.argv[1])
    gguf_corpus()
    safetensors_corpus()
    qir_corpus()
    config_corpus()
    import_corpus()


if __name__ == "__main__":
    main()
