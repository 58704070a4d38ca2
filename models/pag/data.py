"""Loads a dataset written by `pag scenes` (pag-models' renderer): per sample NNNNNN_rgb.png,
NNNNNN_label.png, NNNNNN_depth.npy (metres along optical z), NNNNNN_normals.npy (unit,
camera optical frame), plus meta.json."""
import json
import os
import sys

import numpy as np
import torch
from PIL import Image

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


PACKED = ("rgb", "label", "depth", "normals")


class SceneSet:
    """A rendered dataset in memory. With `packed=True` the samples are first packed into
    `ROOT/packed/*.npy` (once) and memory-mapped, so several training processes share one copy
    in the page cache."""

    def __init__(self, root: str, limit: int | None = None, packed: bool = False):
        self.root = root
        with open(os.path.join(root, "meta.json")) as f:
            self.meta = json.load(f)
        ids = sorted(n[:-8] for n in os.listdir(root) if n.endswith("_rgb.png"))
        if limit:
            ids = ids[:limit]
        if not ids:
            raise SystemExit(f"no samples (*_rgb.png) in {root}: render some with `pag scenes`")
        # Packed sets (training) keep depth as float16 (relative error < 5e-4); evaluation float32.
        self._depth_dtype = np.float16 if packed else np.float32
        if packed:
            self._load_packed(ids)
        else:
            self._load(ids)
        self.ids = ids

    def _load_packed(self, ids):
        pdir = os.path.join(self.root, "packed")
        stamp = os.path.join(pdir, "ids.json")
        fresh = os.path.exists(stamp) and json.load(open(stamp)) == ids
        if not fresh:
            self._load(ids)
            os.makedirs(pdir, exist_ok=True)
            for k in PACKED:
                np.save(os.path.join(pdir, k + ".npy"), getattr(self, k))
            with open(stamp, "w") as f:
                json.dump(ids, f)
        for k in PACKED:
            setattr(self, k, np.load(os.path.join(pdir, k + ".npy"), mmap_mode="r"))

    def _load(self, ids):
        root = self.root
        n = len(ids)
        first = np.asarray(Image.open(os.path.join(root, ids[0] + "_rgb.png")).convert("RGB"))
        h, w = first.shape[:2]
        self.rgb = np.empty((n, h, w, 3), np.uint8)
        self.label = np.empty((n, h, w), np.uint8)
        self.depth = np.empty((n, h, w), self._depth_dtype)
        self.normals = np.empty((n, h, w, 3), np.float16)
        for i, sid in enumerate(ids):
            p = os.path.join(root, sid)
            self.rgb[i] = np.asarray(Image.open(p + "_rgb.png").convert("RGB"))
            self.label[i] = np.asarray(Image.open(p + "_label.png"))
            self.depth[i] = np.load(p + "_depth.npy")
            self.normals[i] = np.load(p + "_normals.npy")
            if (i + 1) % 200 == 0 or i + 1 == n:
                print(f"\rloading {root}: {i + 1}/{n}", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)

    def __len__(self):
        return len(self.ids)

    def batch(self, idx, crop=None, rng=None, flip=False):
        """Tensors for samples idx: image N×3×h×w (normalised), label N×h×w (int64),
        depth N×1×h×w, normals N×3×h×w. Optional random crop (h, w) and left-right flip."""
        idx = np.sort(np.asarray(idx))
        rgb, lab, dep, nor = self.rgb[idx], self.label[idx], self.depth[idx].astype(np.float32), self.normals[idx]
        if crop is not None:
            ch, cw = crop
            H, W = rgb.shape[1:3]
            y0 = int(rng.integers(0, H - ch + 1))
            x0 = int(rng.integers(0, W - cw + 1))
            sl = (slice(None), slice(y0, y0 + ch), slice(x0, x0 + cw))
            rgb, lab, dep, nor = rgb[sl], lab[sl], dep[sl], nor[sl]
        nor = nor.astype(np.float32)
        if flip:
            rgb, lab, dep, nor = rgb[:, :, ::-1], lab[:, :, ::-1], dep[:, :, ::-1], nor[:, :, ::-1].copy()
            nor[..., 0] *= -1.0  # mirrored image: the x axis of the optical frame flips
        img = (rgb.astype(np.float32) / 255.0 - MEAN) / STD
        return (torch.from_numpy(np.ascontiguousarray(img.transpose(0, 3, 1, 2))),
                torch.from_numpy(np.ascontiguousarray(lab)).long(),
                torch.from_numpy(np.ascontiguousarray(dep))[:, None],
                torch.from_numpy(np.ascontiguousarray(nor.transpose(0, 3, 1, 2))))


def normalise_image(rgb_u8: np.ndarray) -> np.ndarray:
    """H×W×3 uint8 → 1×3×H×W float32 as the model expects (see CONTRACT.md)."""
    img = (rgb_u8.astype(np.float32) / 255.0 - MEAN) / STD
    return np.ascontiguousarray(img.transpose(2, 0, 1)[None])
