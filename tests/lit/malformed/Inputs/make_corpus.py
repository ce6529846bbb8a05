#!/usr/bin/env python3
"""Generates the malformed-input corpus of tests/lit/malformed/ (python3 stdlib only,
deterministic: running it twice writes the same bytes).

    python3 make_corpus.py           # (re)writes Inputs/<case>/... next to this script
    python3 make_corpus.py --tests   # also (re)writes ../{gguf,safetensors,config,qir,scheme}.test

Every case is one small file (or one folder: config.json + a tiny valid model.safetensors) under
Inputs/<case>/, and one RUN line of the lit file of its format:

    not qlc inspect <file> 2>&1 | FileCheck %s --check-prefix=<CASE>

(scheme cases: `not qlc import <folder>`, or `qlc import` then `not qlc dequant` where the check
is on tensor data) with the exact message expected, which names the file and, where it applies, the tensor or key.
The expected messages live in CASES below, next to the bytes that provoke them, so a reader can
see the input and the diagnostic together. A case whose message qlc does not produce yet stays
here as it should behave (see docs/security.md).
"""
import json
import os
import shutil
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# ---------------------------------------------------------------------------------------------
# GGUF (FORMATS.md §6.1): magic, u32 version, u64 n_tensors, u64 n_kv, KVs, tensor infos, padding
# to the alignment, data blob.

GGUF_MAGIC = b"GGUF"
T_U8, T_I8, T_U16, T_I16, T_U32, T_I32, T_F32, T_BOOL, T_STR, T_ARR, T_U64, T_I64, T_F64 = range(13)
G_F32, G_F16, G_Q4_0, G_Q8_0, G_IQ2_XXS = 0, 1, 2, 8, 16


def gstr(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def kv(key, vtype, payload):
    """One KV: key, u32 type, raw payload bytes."""
    return gstr(key) + struct.pack("<I", vtype) + payload


def kv_str(key, value):
    return kv(key, T_STR, gstr(value))


def kv_u32(key, value):
    return kv(key, T_U32, struct.pack("<I", value))


def tinfo(name, ne, gtype, offset):
    out = gstr(name) + struct.pack("<I", len(ne))
    for d in ne:
        out += struct.pack("<q", d)
    return out + struct.pack("<IQ", gtype, offset)


def gguf(kvs=(), tensors=(), data=b"", version=3, n_tensors=None, n_kv=None, align=32,
         magic=GGUF_MAGIC, pad_data=True):
    """A GGUF file: kvs are encoded KVs, tensors encoded infos; data is the blob (padded)."""
    head = magic + struct.pack("<IQQ", version,
                               len(tensors) if n_tensors is None else n_tensors,
                               len(kvs) if n_kv is None else n_kv)
    head += b"".join(kvs) + b"".join(tensors)
    if tensors:
        head += b"\0" * (-len(head) % align)
        if pad_data:
            data = data + b"\0" * (-len(data) % align)
        return head + data
    return head


ARCH = kv_str("general.architecture", "llama")


def f32s(n, scale=1.0):
    return b"".join(struct.pack("<f", scale * ((i % 7) - 3)) for i in range(n))


def valid_gguf(**kw):
    """A small valid file: one F32 tensor 'w' of 8 elements."""
    return gguf([ARCH], [tinfo("w", [8], G_F32, 0)], f32s(8), **kw)


def nested_array(depth):
    """An array of arrays ... of one u8, `depth` array levels."""
    payload = struct.pack("<IQ", T_U8, 1) + b"\x07"
    for _ in range(depth - 1):
        payload = struct.pack("<IQ", T_ARR, 1) + payload
    return payload


def gguf_data_blob_past_eof():
    # The header ends at an unaligned offset and the file ends there: the aligned blob start lies
    # past the end of the file.
    body = GGUF_MAGIC + struct.pack("<IQQ", 3, 1, 1) + ARCH + tinfo("w", [0], G_F32, 0)
    assert len(body) % 32 != 0
    return body


def gguf_truncated_padding():
    f = gguf([ARCH], [tinfo("w", [4], G_F32, 0)], f32s(4))  # 16 data bytes + 16 padding
    return f[:-8]


def tiny_moe_gguf(experts, used, router_experts):
    """One llama MoE block with F32 experts (hidden 8, expert FFN 4)."""
    router = 4 * 8 * router_experts
    ts = [tinfo("blk.0.ffn_gate_inp.weight", [8, router_experts], G_F32, 0),
          tinfo("blk.0.ffn_gate_exps.weight", [8, 4, experts], G_F32, router + (-router % 32)),
          tinfo("blk.0.ffn_up_exps.weight", [8, 4, experts], G_F32, router + (-router % 32) + 128 * experts),
          tinfo("blk.0.ffn_down_exps.weight", [4, 8, experts], G_F32, router + (-router % 32) + 256 * experts)]
    data = f32s(8 * router_experts) + b"\0" * (-router % 32) + f32s(96 * experts)
    return gguf([ARCH, kv_u32("llama.block_count", 1), kv_u32("llama.expert_count", experts),
                 kv_u32("llama.expert_used_count", used)], ts, data)


GGUF_CASES = [
    # name, bytes, expected message after "<file>: "
    ("gguf-too-short", b"GG",
     "file is 2 bytes, too short for the GGUF magic"),
    ("gguf-bad-magic", valid_gguf(magic=b"GGUX"),
     "bad magic 0x58554747 (not a GGUF file)"),
    ("gguf-version-1", valid_gguf(version=1),
     "GGUF version 1 is not supported (only versions 2 and 3)"),
    ("gguf-version-4", valid_gguf(version=4),
     "unsupported GGUF version 4 (only 2 and 3)"),
    ("gguf-big-endian", GGUF_MAGIC + struct.pack(">IQQ", 3, 1, 1) + valid_gguf()[24:],
     "version 0x3000000 looks byte-swapped: probably a big-endian GGUF file (endianness "
     "mismatch), which is not supported"),
    ("gguf-truncated-header", GGUF_MAGIC + struct.pack("<I", 3) + b"\x01\x00",
     "truncated file: tensor count at offset 8 runs past the end (10 bytes)"),
    ("gguf-n-tensors-huge", gguf([ARCH], n_tensors=10**12),
     "tensor count 1000000000000 cannot fit in the 45 bytes left in the file"),
    ("gguf-n-kv-huge", gguf([ARCH], n_kv=10**12),
     "metadata KV count 1000000000000 cannot fit in the 45 bytes left in the file"),
    ("gguf-key-length-2-62", GGUF_MAGIC + struct.pack("<IQQ", 3, 0, 1) +
     struct.pack("<Q", 1 << 62) + b"general.architecture",
     "key of KV #0 length 4611686018427387904 exceeds the 20 bytes left in the file"),
    ("gguf-string-value-2-62", gguf([kv("general.name", T_STR, struct.pack("<Q", 1 << 62) + b"x")]),
     "value of key 'general.name' length 4611686018427387904 exceeds the 1 bytes left in the file"),
    ("gguf-truncated-value", gguf([kv("general.alignment", T_U32, b"\x20\x00")]),
     "truncated file: value of key 'general.alignment' at offset 53 runs past the end (55 bytes)"),
    ("gguf-empty-key", gguf([kv("", T_U8, b"\x01"), ARCH]),
     "KV #0 has an empty key"),
    ("gguf-unknown-kv-type", gguf([ARCH, kv("general.weird", 13, b"\x00" * 8)]),
     "key 'general.weird' has unknown value type 13"),
    ("gguf-unknown-array-type", gguf([kv("tokenizer.ggml.scores", T_ARR, struct.pack("<IQ", 77, 1))]),
     "key 'tokenizer.ggml.scores': unknown array element type 77"),
    ("gguf-array-count-huge", gguf([kv("tokenizer.ggml.scores", T_ARR, struct.pack("<IQ", T_F32, 1 << 40))]),
     "key 'tokenizer.ggml.scores': array of 1099511627776 FLOAT32 elements cannot fit in the 0 "
     "bytes left in the file"),
    ("gguf-nested-array-depth", gguf([kv("general.nested", T_ARR, nested_array(9))]),
     "key 'general.nested': arrays nested deeper than 8 levels"),
    ("gguf-duplicate-key", gguf([ARCH, kv_str("general.architecture", "qwen2")]),
     "duplicate key 'general.architecture'"),
    ("gguf-alignment-not-pow2", gguf([ARCH, kv_u32("general.alignment", 48)],
                                     [tinfo("w", [8], G_F32, 0)], f32s(8), align=48),
     "general.alignment 48 is not a non-zero power of two"),
    ("gguf-alignment-zero", gguf([ARCH, kv_u32("general.alignment", 0)],
                                 [tinfo("w", [8], G_F32, 0)], f32s(8)),
     "general.alignment 0 is not a non-zero power of two"),
    ("gguf-alignment-wrong-type", gguf([ARCH, kv("general.alignment", T_U64, struct.pack("<Q", 32))],
                                       [tinfo("w", [8], G_F32, 0)], f32s(8)),
     "general.alignment must be of type UINT32, not UINT64"),
    ("gguf-empty-tensor-name", gguf([ARCH], [tinfo("", [8], G_F32, 0)], f32s(8)),
     "tensor #0 has an empty name"),
    ("gguf-duplicate-tensor", gguf([ARCH], [tinfo("w", [8], G_F32, 0), tinfo("w", [8], G_F32, 32)],
                                   f32s(8) + b"\0" * 32),
     "duplicate tensor name 'w'"),
    ("gguf-n-dims-5", gguf([ARCH], [tinfo("w", [2, 1, 1, 1, 1], G_F32, 0)], f32s(2)),
     "tensor 'w' has 5 dimensions (at most 4)"),
    ("gguf-negative-dim", gguf([ARCH], [tinfo("w", [8, -1], G_F32, 0)], f32s(8)),
     "tensor 'w' has negative dimension ne[1] = -1"),
    ("gguf-dims-overflow", gguf([ARCH], [tinfo("w", [32, 1 << 40, 1 << 40], G_F32, 0)], f32s(32)),
     "tensor 'w': tensor size overflows 64 bits"),
    ("gguf-unknown-ggml-type", gguf([ARCH], [tinfo("w", [8], 99, 0)], f32s(8)),
     "tensor 'w' has unknown ggml type 99"),
    ("gguf-removed-ggml-type", gguf([ARCH], [tinfo("w", [32], 4, 0)], b"\0" * 20),
     "tensor 'w' has removed ggml type 4"),
    ("gguf-ne0-not-block-multiple", gguf([ARCH], [tinfo("w", [33, 2], G_Q4_0, 0)], b"\0" * 64),
     "tensor 'w': row length 33 is not a multiple of the Q4_0 block size 32"),
    ("gguf-misaligned-offset", gguf([ARCH], [tinfo("a", [1], G_F32, 0), tinfo("b", [1], G_F32, 4)],
                                    f32s(2)),
     "tensor 'b' offset 4 is not a multiple of the alignment 32"),
    ("gguf-offset-past-eof", gguf([ARCH], [tinfo("w", [256], G_F32, 0)], f32s(8)),
     "tensor 'w' data [0, +1024) runs past the end of the file (data blob has 32 bytes)"),
    ("gguf-offset-overflow", gguf([ARCH], [tinfo("w", [8], G_F32, (1 << 64) - 32)], f32s(8)),
     "tensor 'w' data [18446744073709551584, +32) runs past the end of the file (data blob has "
     "32 bytes)"),
    ("gguf-data-blob-past-eof", gguf_data_blob_past_eof(),
     "tensor data blob would start at 128, past the end of the file (102 bytes)"),
    ("gguf-truncated-padding", gguf_truncated_padding(),
     "truncated file: it ends inside the padding after tensor 'w' (data blob has 24 bytes)"),
    ("gguf-overlap", gguf([ARCH], [tinfo("a", [16], G_F32, 0), tinfo("b", [8], G_F32, 32)],
                          f32s(16)),
     "tensors 'a' and 'b' overlap"),
    # Accepted by the reader, rejected by the importer (schemes/gguf/gguf_import.cpp).
    ("gguf-iq2xxs-import", gguf([ARCH], [tinfo("blk.0.ffn_up.weight", [256, 2], G_IQ2_XXS, 0)],
                                b"\0" * 132),
     "tensor 'blk.0.ffn_up.weight' has ggml type IQ2_XXS, which qlc does not import (supported: "
     "F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K)"),
    ("gguf-quantized-vector", gguf([ARCH], [tinfo("output_norm.weight", [32], G_Q8_0, 0)], b"\0" * 34),
     "tensor 'output_norm.weight' is a quantized vector"),
    ("gguf-4-dims-import", gguf([ARCH], [tinfo("w", [2, 1, 1, 1], G_F32, 0)], f32s(2)),
     "tensor 'w' has 4 dims; weights have 1 to 3"),
    ("gguf-two-tensors-one-module", gguf([ARCH], [tinfo("blk.0.ffn_up", [8], G_F32, 0),
                                                  tinfo("blk.0.ffn_up.weight", [8], G_F32, 32)],
                                         f32s(8) + b"\0" * 0 + f32s(8)),
     "two tensors map to 'model.layers.0.mlp.up_proj' (one is 'blk.0.ffn_up.weight')"),
    ("gguf-zero-dim-quantized", gguf([ARCH], [tinfo("output.weight", [0, 1 << 62], G_Q4_0, 0)]),
     "tensor 'output.weight': shape must be [N, K] with positive dims, got [4611686018427387904, 0]"),
    # Metadata the assembler trusts (import/importer.cpp). Known bugs: see BUGS below.
    ("gguf-block-count-huge", gguf([ARCH, kv_u32("llama.block_count", 0xFFFFFFFF)],
                                   [tinfo("w", [8], G_F32, 0)], f32s(8)),
     "{{.*}}'llama.block_count'{{.*}}"),
    ("gguf-top-k-too-large", tiny_moe_gguf(experts=2, used=9, router_experts=2),
     "llama.expert_used_count = 9 exceeds the 2 experts of model.layers.0.mlp.experts"),
    ("gguf-router-expert-mismatch", tiny_moe_gguf(experts=2, used=2, router_experts=3),
     "{{.*}}moe router logits have 3 columns but there are 2 experts"),
]

# ---------------------------------------------------------------------------------------------
# safetensors: u64 LE header length N, N bytes of JSON, data area.


def st(header, data=b"", declared=None):
    """header: a dict (dumped compactly) or raw text."""
    text = header if isinstance(header, str) else json.dumps(header, separators=(",", ":"))
    hb = text.encode()
    return struct.pack("<Q", len(hb) if declared is None else declared) + hb + data


def ent(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


ST_CASES = [
    ("st-short-file", b"\x08\x00\x00\x00\x00",
     "file is 5 bytes, too short for the 8-byte safetensors header length"),
    ("st-header-past-eof", st('{"w":{}}', declared=1000),
     "header length 1000 runs past the end of the file (16 bytes)"),
    ("st-header-over-cap", st('{}', declared=200_000_000),
     "header length 200000000 exceeds the 100 MB limit (not a safetensors file?)"),
    ("st-invalid-json", st('{"w": {"dtype": "F32",'),
     "header is not valid JSON: [1:22, byte=22]: Expected object key"),
    ("st-header-not-object", st('[1, 2]'),
     "header JSON is not an object"),
    ("st-duplicate-names", st('{"w":' + json.dumps(ent("F32", [1], 0, 4)) + ',"w":' +
                              json.dumps(ent("F32", [1], 4, 8)) + '}', f32s(2)),
     "duplicate tensor name 'w' in header"),
    ("st-duplicate-escaped-names", st('{"w":' + json.dumps(ent("F32", [1], 0, 4)) + ',"\\u0077":' +
                                      json.dumps(ent("F32", [1], 4, 8)) + '}', f32s(2)),
     "duplicate key in header (spelled with different escapes)"),
    ("st-metadata-not-object", st({"__metadata__": ["pt"], "w": ent("F32", [1], 0, 4)}, f32s(1)),
     "__metadata__ is not an object"),
    ("st-metadata-not-strings", st({"__metadata__": {"format": 1}, "w": ent("F32", [1], 0, 4)}, f32s(1)),
     "__metadata__ value of 'format' is not a string"),
    ("st-entry-not-object", st({"w": [0, 4]}, f32s(1)),
     "tensor 'w': header entry is not an object"),
    ("st-missing-dtype", st({"w": {"shape": [1], "data_offsets": [0, 4]}}, f32s(1)),
     "tensor 'w': missing or non-string 'dtype'"),
    ("st-unknown-dtype", st({"w": ent("Q4", [2], 0, 1)}, b"\0"),
     "tensor 'w': unsupported dtype 'Q4'"),
    ("st-missing-shape", st({"w": {"dtype": "F32", "data_offsets": [0, 4]}}, f32s(1)),
     "tensor 'w': missing or non-array 'shape'"),
    ("st-shape-not-integer", st({"w": ent("F32", [1.5], 0, 4)}, f32s(1)),
     "tensor 'w': shape entry is not an integer in int64 range"),
    ("st-negative-dim", st({"w": ent("F32", [2, -2], 0, 16)}, f32s(4)),
     "tensor 'w': negative dimension -2 in shape"),
    ("st-dims-overflow", st({"w": ent("F32", [1 << 32, 1 << 32], 0, 4)}, f32s(1)),
     "tensor 'w': element count of the shape overflows int64"),
    ("st-bytes-overflow", st({"w": ent("F32", [1 << 31, 1 << 31], 0, 4)}, f32s(1)),
     "tensor 'w': byte size of the shape overflows"),
    ("st-offsets-not-pair", st({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0]}}, f32s(1)),
     "tensor 'w': 'data_offsets' must be an array [begin, end]"),
    ("st-offsets-negative", st({"w": ent("F32", [1], -4, 0)}, f32s(1)),
     "tensor 'w': 'data_offsets' entries must be non-negative integers"),
    ("st-begin-after-end", st({"w": ent("F32", [1], 8, 4)}, f32s(2)),
     "tensor 'w': data_offsets begin 8 > end 4"),
    ("st-shape-size-mismatch", st({"w": ent("F32", [4], 0, 12)}, f32s(3)),
     "tensor 'w': data_offsets span 12 bytes but dtype and shape need 16"),
    ("st-offsets-out-of-bounds", st({"w": ent("F32", [16], 0, 64)}, f32s(4)),
     "tensor 'w': data_offsets [0, 64) lie outside the data area of 16 bytes"),
    ("st-overlap", st({"a": ent("F32", [2], 0, 8), "b": ent("F32", [2], 4, 12)}, f32s(3)),
     "tensors 'a' and 'b' overlap"),
    ("st-gap", st({"a": ent("F32", [1], 0, 4), "b": ent("F32", [1], 12, 16)}, f32s(4)),
     "gap of 8 bytes in the data area before tensor 'b'"),
    ("st-trailing-bytes", st({"w": ent("F32", [1], 0, 4)}, f32s(3)),
     "8 trailing bytes after the last tensor in the data area"),
    # Accepted by the reader, rejected by the importer (import/hf_provider.cpp).
    ("st-int-dense-weight", st({"model.layers.0.mlp.up_proj.weight": ent("I32", [2, 2], 0, 16)}, f32s(4)),
     "tensor 'model.layers.0.mlp.up_proj.weight' has dtype I32, which is not a float type a dense "
     "weight can have"),
]

# ---------------------------------------------------------------------------------------------
# Model folders: config.json (and friends) next to a tiny valid model.safetensors.

TINY_ST = st({"model.norm.weight": ent("F32", [4], 0, 16)}, f32s(4))

CT_FLOAT_CONFIG = {
    "model_type": "llama",
    "quantization_config": {
        "quant_method": "compressed-tensors",
        "format": "float-quantized",
        "config_groups": {"group_0": {"targets": ["Linear"],
                                      "weights": {"num_bits": 8, "type": "float",
                                                  "strategy": "channel", "symmetric": True}}},
    },
}

# name, {file: bytes or text}, path suffix inspected ("" = the folder), expected message; the
# message's leading file is given relative to the case folder.
CFG_CASES = [
    ("cfg-invalid-json", {"config.json": '{"model_type": "llama",\n "quantization_config": {\n}'},
     "config.json", "invalid JSON: [3:1, byte=51]: Expected , or } after object property"),
    ("cfg-not-object", {"config.json": '["llama"]\n'},
     "config.json", "top-level JSON value is not an object"),
    ("cfg-quant-not-object", {"config.json": json.dumps({"model_type": "llama",
                                                         "quantization_config": "awq"})},
     "config.json", "quantization_config is not an object"),
    ("cfg-unknown-quant-method", {"config.json": json.dumps(
        {"model_type": "llama", "quantization_config": {"quant_method": "hqq", "bits": 4}})},
     "config.json", "unknown quant_method 'hqq': no registered scheme reads it (registered: "),
    ("cfg-no-quant-method", {"config.json": json.dumps(
        {"model_type": "llama", "quantization_config": {"bits": 4}})},
     "config.json", "unknown quant_method '(none)': no registered scheme reads it (registered: "),
    ("cfg-ct-unknown-format", {"config.json": json.dumps(CT_FLOAT_CONFIG)},
     "config.json", "config_groups.group_0: compressed-tensors format 'float-quantized' is not "
     "supported (qlc reads pack-quantized)"),
    ("cfg-awq-bits-3", {"config.json": json.dumps(
        {"model_type": "llama", "quantization_config": {"quant_method": "awq", "bits": 3,
                                                        "group_size": 128, "zero_point": True,
                                                        "version": "gemm"}})},
     "config.json", "AWQ bits = 3 is not supported (4, or 8 for awq_marlin checkpoints)"),
    ("cfg-legacy-invalid-json", {"quantize_config.json": '{"bits": 4,, "group_size": 128}'},
     "quantize_config.json", "invalid JSON: [1:12, byte=12]: Expected object key"),
    ("cfg-index-escapes-folder", {"model.safetensors.index.json": json.dumps(
        {"metadata": {"total_size": 16}, "weight_map": {"model.norm.weight": "../evil.safetensors"}})},
     "model.safetensors.index.json", "weight_map entry 'model.norm.weight' names an invalid shard "
     "path '../evil.safetensors'"),
    ("cfg-index-missing-tensor", {"model.safetensors.index.json": json.dumps(
        {"metadata": {"total_size": 16}, "weight_map": {"model.norm.weight": "shard.safetensors",
                                                        "lm_head.weight": "shard.safetensors"}}),
                                  "shard.safetensors": TINY_ST},
     "model.safetensors.index.json", "tensor 'lm_head.weight' is listed in weight_map but missing "
     "from shard "),
    ("cfg-index-not-json", {"model.safetensors.index.json": '{"weight_map": [}'},
     "model.safetensors.index.json", "invalid JSON: [1:17, byte=17]: Invalid JSON value"),
    ("cfg-index-no-weight-map", {"model.safetensors.index.json": json.dumps({"metadata": {}})},
     "model.safetensors.index.json", "missing 'weight_map' object"),
    ("cfg-no-model-file", {"config.json": json.dumps({"model_type": "llama"})},
     "", "no model.safetensors, model.safetensors.index.json or *.safetensors file in this folder"),
    ("cfg-missing-path", {}, "absent", "no such file or directory"),
    ("cfg-tensor-in-two-files", {"a.safetensors": TINY_ST, "b.safetensors": TINY_ST},
     "b.safetensors", "tensor 'model.norm.weight' is also in {{.*}}/Inputs/cfg-tensor-in-two-files/a.safetensors"),
]
# Config cases that get no model.safetensors added (their point is the model files they have).
CFG_OWN_MODEL_FILES = {"cfg-no-model-file"}

# ---------------------------------------------------------------------------------------------
# Scheme checkpoints: model folders whose container and config.json are valid but whose scheme
# tensors are not (schemes/*/*_import.cpp: part presence, dtypes, ranks, shapes against the
# config), and expert stacks the importer cannot form (import/hf_provider.cpp, importer.cpp).
# g_idx values are tensor data: the import maps, never reads, it, so their range is checked when
# the weight is read (`qlc dequant`, `qlc run`).


def st_tensors(tensors):
    """A valid safetensors file holding {name: (dtype, shape, bytes)}, tiled in order."""
    header, blob = {}, b""
    for name, (dtype, shape, data) in tensors.items():
        header[name] = ent(dtype, shape, len(blob), len(blob) + len(data))
        blob += data
    return st(header, blob)


def i32s(values):
    return struct.pack(f"<{len(values)}i", *values)


def f16s(n):
    return struct.pack("<e", 0.01) * n


UP = "model.layers.0.mlp.up_proj"  # N = 32 outputs, K = 64 inputs, groups of 32
AWQ_CONFIG = {"model_type": "llama",
              "quantization_config": {"quant_method": "awq", "bits": 4, "group_size": 32,
                                      "zero_point": True, "version": "gemm"}}
GPTQ_CONFIG = {"model_type": "llama",
               "quantization_config": {"quant_method": "gptq", "bits": 4, "group_size": 32,
                                       "desc_act": True, "sym": False,
                                       "checkpoint_format": "gptq"}}
CT_CONFIG = {"model_type": "llama",
             "quantization_config": {
                 "quant_method": "compressed-tensors", "format": "pack-quantized",
                 "config_groups": {"group_0": {"targets": ["Linear"],
                                               "weights": {"num_bits": 4, "type": "int",
                                                           "strategy": "group", "group_size": 32,
                                                           "symmetric": True,
                                                           "actorder": "group"}}}}}
AWQ_NOT_CONVERTING_UP = {"model_type": "llama",
                         "quantization_config": dict(AWQ_CONFIG["quantization_config"],
                                                     modules_to_not_convert=["up_proj"])}
GIDX_OK = i32s([k // 32 for k in range(64)])
GIDX_BAD = i32s([k // 32 for k in range(63)] + [2])  # groups are 0..1


def awq_parts(**over):
    t = {f"{UP}.qweight": ("I32", [64, 4], i32s([0] * 256)),
         f"{UP}.qzeros": ("I32", [2, 4], i32s([0] * 8)),
         f"{UP}.scales": ("F16", [2, 32], f16s(64))}
    t.update({f"{UP}.{k}": v for k, v in over.items()})
    return {k: v for k, v in t.items() if v is not None}


def gptq_parts(**over):
    t = {f"{UP}.qweight": ("I32", [8, 32], i32s([0] * 256)),
         f"{UP}.qzeros": ("I32", [2, 4], i32s([0] * 8)),
         f"{UP}.scales": ("F16", [2, 32], f16s(64)),
         f"{UP}.g_idx": ("I32", [64], GIDX_OK)}
    t.update({f"{UP}.{k}": v for k, v in over.items()})
    return {k: v for k, v in t.items() if v is not None}


def ct_parts(**over):
    t = {f"{UP}.weight_packed": ("I32", [32, 8], i32s([0] * 256)),
         f"{UP}.weight_scale": ("F16", [32, 2], f16s(64)),
         f"{UP}.weight_g_idx": ("I32", [64], GIDX_OK),
         f"{UP}.weight_shape": ("I64", [2], struct.pack("<2q", 32, 64))}
    t.update({f"{UP}.{k}": v for k, v in over.items()})
    return {k: v for k, v in t.items() if v is not None}


def w8a8_folder(**over):
    t = {f"{UP}.weight": ("I8", [32, 64], b"\0" * 2048),
         f"{UP}.weight_scale": ("F32", [32, 1], f32s(32)),
         f"{UP}.weight_offset": ("F32", [32, 1], b"\0" * 128)}
    t.update({f"{UP}.{k}": v for k, v in over.items()})
    return {"config.json": json.dumps({"model_type": "llama"}),
            "quant_model_description.json": json.dumps({n: "W8A8_DYNAMIC" for n in t}),
            "model.safetensors": st_tensors(t)}


def folder(config, tensors):
    return {"config.json": json.dumps(config), "model.safetensors": st_tensors(tensors)}


def dense_experts(types):
    """Dense MoE experts model.layers.0.mlp.experts.<e>.up_proj.weight [4, 8] of the given
    {expert index: dtype}."""
    size = {"F32": 4, "F16": 2}
    return folder({"model_type": "llama"},
                  {f"model.layers.0.mlp.experts.{e}.up_proj.weight": (dt, [4, 8], b"\0" * 32 * size[dt])
                   for e, dt in types.items()})


# name, {file: bytes or text}, command ("import" or "dequant": the weight up_proj is read),
# expected message after "qlc: error: " (a FileCheck pattern: the file is matched by {{.*}}).
SCHEME_CASES = [
    ("scheme-awq-missing-qzeros", folder(AWQ_CONFIG, awq_parts(qzeros=None)), "import",
     f"{{{{.*}}}}/model.safetensors: tensor '{UP}.qzeros' is missing"),
    ("scheme-awq-qweight-rank", folder(AWQ_CONFIG, awq_parts(qweight=("I32", [256], i32s([0] * 256)))),
     "import", f"{{{{.*}}}}/model.safetensors: tensor '{UP}.qweight' has shape [256], expected 2 dims"),
    ("scheme-awq-scales-columns", folder(AWQ_CONFIG, awq_parts(scales=("F16", [2, 16], f16s(32)))),
     "import", f"{{{{.*}}}}/model.safetensors: tensor '{UP}.qweight' has shape [64, 4] but scales "
     "have N = 16 columns, so qweight should be [64, 2] (4-bit codes packed along N)"),
    ("scheme-gptq-qweight-dtype", folder(GPTQ_CONFIG, gptq_parts(qweight=("F32", [8, 32], f32s(256)))),
     "import", f"{{{{.*}}}}/model.safetensors: tensor '{UP}.qweight' has dtype F32, expected I32"),
    ("scheme-gptq-qzeros-shape", folder(GPTQ_CONFIG, gptq_parts(qzeros=("I32", [3, 4], i32s([0] * 12)))),
     "import", f"{{{{.*}}}}/model.safetensors: tensor '{UP}.qzeros' has shape [3, 4], expected [2, 4] "
     "(rows = ceil(K/G) = ceil(64/32), columns = N*bits/32) for !gptq<bits = 4, group = 32, "
     "sym = false, desc_act = true, shape = [32, 64]>"),
    ("scheme-gptq-g-idx-shape", folder(GPTQ_CONFIG, gptq_parts(g_idx=("I32", [32], GIDX_OK[:128]))),
     "import", f"{{{{.*}}}}/model.safetensors: tensor '{UP}.g_idx' has shape [32], expected [64] "
     "(one group index per input row k) for !gptq<bits = 4, group = 32, sym = false, "
     "desc_act = true, shape = [32, 64]>"),
    ("scheme-gptq-g-idx-range", folder(GPTQ_CONFIG, gptq_parts(g_idx=("I32", [64], GIDX_BAD))),
     "dequant", f"{{{{.*}}}}/model.safetensors: tensor '{UP}.g_idx': weight @{UP}: g_idx[63] = 2 is "
     "not a group index (0..1)"),
    ("scheme-ct-scale-shape", folder(CT_CONFIG, ct_parts(weight_scale=("F16", [32, 3], f16s(96)))),
     "import", f"{{{{.*}}}}/model.safetensors: tensor '{UP}.weight_scale' has shape [32, 3], expected "
     "[32, 2] (rows = N, K/G = 64/32 columns) for !ct_wna16<bits = 4, group = 32, actorder = "
     "group, shape = [32, 64]>"),
    ("scheme-ct-g-idx-range", folder(CT_CONFIG, ct_parts(weight_g_idx=("I32", [64], GIDX_BAD))),
     "dequant", f"{{{{.*}}}}/model.safetensors: tensor '{UP}.weight_g_idx': weight @{UP}: "
     "weight_g_idx[63] = 2 is not a group index (0..1)"),
    ("scheme-w8a8-scale-shape", w8a8_folder(weight_scale=("F32", [32, 2], f32s(64))), "import",
     f"{{{{.*}}}}/model.safetensors: tensor '{UP}.weight_scale' has shape [32, 2], expected [32, 1] "
     "(one scale per output row) for !w8a8<shape = [32, 64]>"),
    # AWQ leaves up_proj unquantized (modules_to_not_convert), but it has only AWQ tensors.
    ("st-module-without-weight", folder(AWQ_NOT_CONVERTING_UP, awq_parts()), "import",
     f"{{{{.*}}}}/Inputs/st-module-without-weight: module '{UP}' has no tensor '{UP}.weight'"),
    ("st-expert-missing", dense_experts({0: "F32", 2: "F32"}), "import",
     "{{.*}}/Inputs/st-expert-missing: model.layers.0.mlp.experts.up_proj: expert 1 is missing (experts must be numbered "
     "0..E-1)"),
    ("st-expert-type-mismatch", dense_experts({0: "F32", 1: "F16"}), "import",
     "{{.*}}/Inputs/st-expert-type-mismatch: model.layers.0.mlp.experts.up_proj: expert 1 is "
     "tensor<4x8xf16> but expert 0 is tensor<4x8xf32>"),
]

# ---------------------------------------------------------------------------------------------
# .qir


def random_bytes(n, seed):
    # xorshift32: deterministic without the random module's version-dependent details.
    x = seed
    out = bytearray()
    for _ in range(n):
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        out.append(x & 0xFF)
    return bytes(out)


QIR_VALID = """module attributes {checkpoint = "model.safetensors"}

weight @model.norm : tensor<4xf32> {
  data = tensor<4xf32> = hex"0000803F0000803F0000803F0000803F"
}

func @lm_head(%x: tensor<?x4xf32>) -> tensor<?x4xf32> {
  %y = mul %x, %x : tensor<?x4xf32>
  return %y
}
"""

QIR_CASES = [
    # name, bytes, expected lines (the first after "<file>:"), the last qlc's own
    ("qir-truncated", QIR_VALID[:QIR_VALID.index("hex") + 12].encode(),
     ["4:26: error: unterminated string"]),
    ("qir-random-bytes", random_bytes(256, 2463534242),
     ["1:1: error: expected 'weight' or 'func' at top level"]),
    ("qir-empty-after-weight", QIR_VALID[:QIR_VALID.index("func")].encode() + b"func @f(",
     ["7:9: error: expected an argument '%name', got end of file"]),
]

# .qir files that parse but name a checkpoint (relative: resolved from the current folder today,
# see BUGS) that is missing, or a tensor it does not hold.
QIR_CKPT_CASES = [
    ("qir-missing-checkpoint",
     {"model.qir": 'module attributes {checkpoint = "missing.safetensors"}\n\n'
                   'weight @w : tensor<4xf32> {\n  data = tensor<4xf32> from "w"\n}\n'},
     "{{.*}}/Inputs/qir-missing-checkpoint/model.qir: {{.*}}missing.safetensors: no such file or directory"),
    ("qir-missing-tensor",
     {"model.qir": 'module attributes {checkpoint = "model.safetensors"}\n\n'
                   'weight @w : tensor<4xf32> {\n  data = tensor<4xf32> from "nope"\n}\n',
      "model.safetensors": None},
     "model.safetensors: no tensor 'nope'"),
]

# Cases whose test is kept as qlc should behave although it does not yet; each gets a lit file of
# its own (bug-<case>.test) so that it does not hide the other cases of its format.
BUGS = {
}
# Commands other than `qlc inspect <file>` (the checkpoint of a .qir is only read on use).
COMMANDS = {
    "gguf-block-count-huge": "not timeout 10 %qlc inspect {file}",
    "cfg-missing-path": "not %qlc inspect {file}/absent",
    "qir-missing-tensor": "cd %S/Inputs/qir-missing-tensor && not %qlc dequant model.qir w -o %t.npy",
}

# ---------------------------------------------------------------------------------------------


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(path, "wb") as f:
        f.write(data)


def all_cases():
    """(format, name, relative path inspected, expected message)"""
    out = []
    for name, data, msg in GGUF_CASES:
        out.append(("gguf", name, f"{name}/model.gguf", {f"{name}/model.gguf": data}, msg))
    for name, data, msg in ST_CASES:
        out.append(("safetensors", name, f"{name}/model.safetensors",
                    {f"{name}/model.safetensors": data}, msg))
    for name, files, msgfile, msg in CFG_CASES:
        fs = {f"{name}/{k}": v for k, v in files.items()}
        if (not any(k.endswith(".safetensors") for k in files) and
                "model.safetensors.index.json" not in files and name not in CFG_OWN_MODEL_FILES):
            fs[f"{name}/model.safetensors"] = TINY_ST
        out.append(("config", name, name, fs, (msgfile, msg)))
    for name, files, command, msg in SCHEME_CASES:
        out.append(("scheme", name, name, {f"{name}/{k}": v for k, v in files.items()}, (command, msg)))
    for name, data, msgs in QIR_CASES:
        out.append(("qir", name, f"{name}/model.qir", {f"{name}/model.qir": data}, msgs))
    for name, files, msg in QIR_CKPT_CASES:
        fs = {f"{name}/{k}": (TINY_ST if v is None else v) for k, v in files.items()}
        out.append(("qir-checkpoint", name, f"{name}/model.qir", fs, msg))
    return out


def generate():
    cases = all_cases()
    for fmt, name, rel, files, msg in cases:
        d = os.path.join(HERE, name)
        if os.path.isdir(d):
            shutil.rmtree(d)
    for fmt, name, rel, files, msg in cases:
        for p, data in sorted(files.items()):
            write(os.path.join(HERE, p), data)
    return cases


def filecheck_escape(s):
    # Literal text for FileCheck: only "{{" and "[[" are special.
    return s.replace("{{", "{{[{][{]}}").replace("[[", "{{[[][[]}}")


LIT_HEADER = {
    "gguf": "Malformed GGUF files (io/gguf.cpp, schemes/gguf/gguf_import.cpp)",
    "safetensors": "Malformed safetensors files (io/safetensors.cpp, import/hf_provider.cpp)",
    "config": "Malformed model folders: config.json, legacy quantize_config.json, sharded index "
              "(io/quant_config.cpp, io/safetensors.cpp, import/hf_provider.cpp, schemes/*/*_import.cpp)",
    "qir": "Malformed .qir modules given to the qlc driver (ir/parser.cpp, tools/qlc/qlc.cpp)",
    "scheme": "Scheme checkpoints with bad tensors and expert stacks the importer cannot form "
              "(schemes/*/*_import.cpp, import/hf_provider.cpp, import/importer.cpp); g_idx "
              "ranges are checked when the weight is read (qlc dequant)",
}


def check_lines(fmt, name, rel, msg):
    prefix = name.upper()
    L = []
    if fmt == "qir":
        for m in msg:
            L.append(f"# {prefix}: {{{{.*}}}}/Inputs/{rel}:{filecheck_escape(m)}")
        L.append(f"# {prefix}: qlc: error: {{{{.*}}}}/Inputs/{rel}: invalid module (see the errors above)")
    elif fmt == "qir-checkpoint":
        L.append(f"# {prefix}: qlc: error: {msg}")
    elif fmt == "config":
        msgfile, text = msg
        where = f"/Inputs/{name}/{msgfile}" if msgfile else f"/Inputs/{name}"
        text = text if "{{" in text else filecheck_escape(text)
        L.append(f"# {prefix}: qlc: error: {{{{.*}}}}{where}: {text}")
    elif fmt == "scheme":
        text = msg[1].replace("{{.*}}/model.safetensors", f"{{{{.*}}}}/Inputs/{name}/model.safetensors")
        L.append(f"# {prefix}: qlc: error: {text}")
    elif "{{" in msg:  # already a FileCheck pattern
        L.append(f"# {prefix}: qlc: error: {{{{.*}}}}/Inputs/{rel}: {msg}")
    else:
        L.append(f"# {prefix}: qlc: error: {{{{.*}}}}/Inputs/{rel}: {filecheck_escape(msg)}")
    L.append(f"# {prefix}-NOT: {{{{Stack dump|PLEASE submit|Assertion|Aborted}}}}")
    return L


def run_line(name, rel):
    cmd = COMMANDS.get(name, "not %qlc inspect {file}").format(file=f"%S/Inputs/{rel}")
    scheme = {c[0]: c[2] for c in SCHEME_CASES}.get(name)
    if scheme == "import":
        cmd = f"not %qlc import %S/Inputs/{rel} -o %t.qir"
    elif scheme == "dequant":
        # The import succeeds (it does not read tensor data); reading the weight fails.
        cmd = (f"%qlc import %S/Inputs/{rel} -o %t.qir && "
               f"not %qlc dequant %S/Inputs/{rel} {UP} -o %t.npy")
    return f"# RUN: {cmd} 2>&1 | FileCheck %s --check-prefix={name.upper()}"


GENERATED_MARK = "Generated by Inputs/make_corpus.py --tests"


def write_tests(cases):
    testdir = os.path.dirname(HERE)
    for f in os.listdir(testdir):  # only the files this script wrote (not e.g. security-doc.test)
        path = os.path.join(testdir, f)
        if f.endswith(".test") and GENERATED_MARK in open(path).read():
            os.remove(path)
    by = {}
    for c in cases:
        fmt = "qir" if c[0] == "qir-checkpoint" else c[0]
        if c[1] in BUGS:
            fmt = "bug-" + c[1]
        by.setdefault(fmt, []).append(c)
    for key, cs in sorted(by.items()):
        fmt0 = cs[0][0]
        head = LIT_HEADER["qir" if fmt0 == "qir-checkpoint" else fmt0]
        L = [f"# {head}.",
             f"# {GENERATED_MARK}; edit the CASES there, not this file.",
             "# Every input must make qlc exit non-zero with a message naming the file",
             "# (and the tensor or key where it applies); none may crash."]
        if key.startswith("bug-"):
            L += ["#", "# KNOWN BUG (the test states the behaviour qlc should have; it fails today):"]
            words, line = BUGS[cs[0][1]].split(), "#"
            for w in words:
                if len(line) + len(w) > 98:
                    L.append(line)
                    line = "#"
                line += " " + w
            L.append(line)
        L.append("")
        for fmt, name, rel, files, msg in cs:
            L.append(run_line(name, rel))
            L += check_lines(fmt, name, rel, msg)
            L.append("")
        with open(os.path.join(testdir, f"{key}.test"), "w") as f:
            f.write("\n".join(L))


def main():
    cases = generate()
    if "--tests" in sys.argv[1:]:
        write_tests(cases)
    print(f"{len(cases)} cases written under {HERE}")


if __name__ == "__main__":
    main()
