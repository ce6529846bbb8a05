#!/usr/bin/env python3
"""A valid 10 GB safetensors checkpoint whose data is a hole (ftruncate, no disk used) must be
mapped, not read: `qlc inspect` on it succeeds with a peak RSS under 200 MB
(docs/security.md, "Resource limits").

    sparse_checkpoint_test.py QLC_BINARY SCRATCH_DIR
"""
import json
import os
import resource
import shutil
import struct
import subprocess
import sys

MAX_RSS_MB = 200
qlc, scratch = sys.argv[1], sys.argv[2]
shutil.rmtree(scratch, ignore_errors=True)
os.makedirs(scratch)
try:
    # One dense F16 Linear [81920, 65536]: 2 * 81920 * 65536 = 10 GiB (10.7e9 bytes) of data.
    n, k = 81920, 65536
    nbytes = 2 * n * k
    header = json.dumps({"model.layers.0.mlp.down_proj.weight": {
        "dtype": "F16", "shape": [n, k], "data_offsets": [0, nbytes]}}, separators=(",", ":"))
    header += " " * (-len(header) % 8)
    path = os.path.join(scratch, "model.safetensors")
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header)) + header.encode())
        f.truncate(8 + len(header) + nbytes)
    st = os.stat(path)
    print(f"sparse file: {st.st_size} bytes, {st.st_blocks * 512} bytes on disk")
    if st.st_blocks * 512 > 1 << 20:
        print("SKIP: this file system does not keep the file sparse")
        sys.exit(0)
    env = dict(os.environ, ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0")
    r = subprocess.run([qlc, "inspect", scratch], capture_output=True, text=True, timeout=100,
                       env=env)
    rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(r.stdout)
    print(r.stderr, file=sys.stderr)
    print(f"qlc inspect: exit {r.returncode}, max RSS {rss_mb:.1f} MB")
    ok = True
    if r.returncode != 0:
        print("FAIL: qlc inspect failed on a valid sparse checkpoint"); ok = False
    if "model.layers.0.mlp.down_proj" not in r.stdout or str(nbytes) not in r.stdout:
        print("FAIL: the weight or its byte size is missing from the listing"); ok = False
    if rss_mb >= MAX_RSS_MB:
        print(f"FAIL: max RSS {rss_mb:.1f} MB >= {MAX_RSS_MB} MB: the data was read"); ok = False
    sys.exit(0 if ok else 1)
finally:
    shutil.rmtree(scratch, ignore_errors=True)
