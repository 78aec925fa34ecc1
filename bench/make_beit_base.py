#!/usr/bin/python3
"""make_beit_base.py - a random-weight BEiT-base folder for `vtx bench` (BENCHMARK.md, "BEiT relative bias").

    /usr/bin/python3 bench/make_beit_base.py OUT_DIR [--seed 0]

Writes OUT_DIR/config.json with the architecture of microsoft/beit-base-patch16-224 (BeitForImageClassification:
hidden 768, 12 layers, 12 heads, MLP 3072, patch 16 at 224, per-layer relative position bias, no absolute
position embeddings, layer scale 0.1, mean pooling, 1000 labels), a preprocessor_config.json (BeitImageProcessor)
and model.safetensors with every key and shape transformers 4.48.3 saves for that class (F32): weights N(0, 0.02),
biases 0, LayerNorm 1 / 0, lambda_1/2 = 0.1, relative position bias tables N(0, 0.02). Timing does not depend
on the values. Needs numpy (Debian python3-numpy).
"""
import argparse
import json
import os
import struct

import numpy as np

D, L, HEADS, MLP, PATCH, IMAGE, LABELS = 768, 12, 12, 3072, 16, 224, 1000


def tensors():
    win = IMAGE // PATCH
    rows = (2 * win - 1) ** 2 + 3
    t = [("beit.embeddings.cls_token", [1, 1, D], "normal"),
         ("beit.embeddings.patch_embeddings.projection.weight", [D, 3, PATCH, PATCH], "normal"),
         ("beit.embeddings.patch_embeddings.projection.bias", [D], "zeros")]
    for i in range(L):
        p = f"beit.encoder.layer.{i}."
        t += [(p + "lambda_1", [D], "ls"), (p + "lambda_2", [D], "ls"),
              (p + "attention.attention.query.weight", [D, D], "normal"),
              (p + "attention.attention.query.bias", [D], "zeros"),
              (p + "attention.attention.key.weight", [D, D], "normal"),
              (p + "attention.attention.value.weight", [D, D], "normal"),
              (p + "attention.attention.value.bias", [D], "zeros"),
              (p + "attention.attention.relative_position_bias.relative_position_bias_table", [rows, HEADS], "normal"),
              (p + "attention.output.dense.weight", [D, D], "normal"),
              (p + "attention.output.dense.bias", [D], "zeros"),
              (p + "intermediate.dense.weight", [MLP, D], "normal"),
              (p + "intermediate.dense.bias", [MLP], "zeros"),
              (p + "output.dense.weight", [D, MLP], "normal"),
              (p + "output.dense.bias", [D], "zeros"),
              (p + "layernorm_before.weight", [D], "ones"), (p + "layernorm_before.bias", [D], "zeros"),
              (p + "layernorm_after.weight", [D], "ones"), (p + "layernorm_after.bias", [D], "zeros")]
    t += [("beit.pooler.layernorm.weight", [D], "ones"), ("beit.pooler.layernorm.bias", [D], "zeros"),
          ("classifier.weight", [LABELS, D], "normal"), ("classifier.bias", [LABELS], "zeros")]
    return t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    config = {
        "architectures": ["BeitForImageClassification"], "model_type": "beit", "hidden_size": D,
        "num_hidden_layers": L, "num_attention_heads": HEADS, "intermediate_size": MLP, "hidden_act": "gelu",
        "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0, "initializer_range": 0.02,
        "layer_norm_eps": 1e-12, "image_size": IMAGE, "patch_size": PATCH, "num_channels": 3,
        "use_mask_token": False, "use_absolute_position_embeddings": False, "use_relative_position_bias": True,
        "use_shared_relative_position_bias": False, "layer_scale_init_value": 0.1, "drop_path_rate": 0.1,
        "use_mean_pooling": True, "vocab_size": 8192, "torch_dtype": "float32", "transformers_version": "4.48.3",
        "id2label": {str(i): f"LABEL_{i}" for i in range(LABELS)},
        "label2id": {f"LABEL_{i}": i for i in range(LABELS)},
    }
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    proc = {"image_processor_type": "BeitImageProcessor", "do_resize": True, "size": {"height": 224, "width": 224},
            "resample": 2, "do_center_crop": False, "do_rescale": True, "rescale_factor": 1 / 255,
            "do_normalize": True, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}
    with open(os.path.join(a.out, "preprocessor_config.json"), "w") as f:
        json.dump(proc, f, indent=2)

    rng = np.random.default_rng(a.seed)
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name, shape, kind in tensors():
        n = int(np.prod(shape))
        if kind == "normal":
            v = rng.standard_normal(n, dtype=np.float32) * np.float32(0.02)
        elif kind == "ones":
            v = np.ones(n, np.float32)
        elif kind == "ls":
            v = np.full(n, 0.1, np.float32)
        else:
            v = np.zeros(n, np.float32)
        b = v.astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(os.path.join(a.out, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    print(f"{a.out}: {len(header) - 1} tensors, {off / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
