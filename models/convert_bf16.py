#!/usr/bin/env python3
"""Re-saves a hub-layout F32 checkpoint folder as BF16, like `model.to(torch.bfloat16).save_pretrained(out)`.

    python3 models/convert_bf16.py SRC_DIR OUT_DIR

Python 3 standard library only (no torch, no numpy). For every F32 tensor of SRC_DIR/model.safetensors the
float32 bits are rounded to bfloat16 with round-to-nearest-even (torch's float -> bfloat16 conversion; NaN
becomes the quiet NaN 0x7FC0, which does not occur in these weights); tensors of other dtypes are copied. The
tensors keep their order and shapes, the metadata ({"format": "pt"}) is kept, the header is padded with spaces
to a multiple of 8 bytes. config.json is copied with "torch_dtype": "bfloat16"; preprocessor_config.json is
copied unchanged. The output is deterministic: running it twice gives the same bytes.
"""
import array
import json
import os
import shutil
import struct
import sys


def f32_to_bf16_bytes(raw: bytes) -> bytes:
    bits = array.array("I")
    assert bits.itemsize == 4
    bits.frombytes(raw)
    if sys.byteorder != "little":
        bits.byteswap()
    out = array.array("H")
    for b in bits:
        if (b & 0x7F800000) == 0x7F800000 and (b & 0x007FFFFF):  # NaN
            out.append(0x7FC0)
        else:
            out.append(((b + 0x7FFF + ((b >> 16) & 1)) >> 16) & 0xFFFF)
    if sys.byteorder != "little":
        out.byteswap()
    return out.tobytes()


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit("usage: convert_bf16.py SRC_DIR OUT_DIR")
    src, dst = sys.argv[1], sys.argv[2]
    with open(os.path.join(src, "model.safetensors"), "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + n])
    data = blob[8 + n :]
    meta = header.pop("__metadata__", None)
    new_header, chunks, offset = {}, [], 0
    if meta is not None:
        new_header["__metadata__"] = meta
    for name, t in header.items():  # json keeps the file's order
        a, b = t["data_offsets"]
        raw = data[a:b]
        dtype = t["dtype"]
        if dtype == "F32":
            raw, dtype = f32_to_bf16_bytes(raw), "BF16"
        new_header[name] = {"dtype": dtype, "shape": t["shape"], "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(new_header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    os.makedirs(dst, exist_ok=True)
    with open(os.path.join(dst, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for c in chunks:
            f.write(c)
    with open(os.path.join(src, "config.json")) as f:
        cfg = json.load(f)
    cfg["torch_dtype"] = "bfloat16"
    with open(os.path.join(dst, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    shutil.copyfile(os.path.join(src, "preprocessor_config.json"), os.path.join(dst, "preprocessor_config.json"))


if __name__ == "__main__":
    main()
