"""Small images for the report: misclassified test images as PNG data, no imaging library.

The grader's process holds the test images and labels; it picks the model's
most confident mistakes and stores them in the results as PNG thumbnails, so
that a report can be rendered later from ``results.json`` alone.
"""
from __future__ import annotations

import base64
import struct
import zlib

import numpy as np


def png_bytes(image: np.ndarray) -> bytes:
    """An RGB uint8 image (H, W, 3) as PNG bytes."""
    h, w, _ = image.shape
    raw = b"".join(b"\x00" + image[y].astype(np.uint8).tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + \
            struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def most_confident_mistakes(predictions: np.ndarray, labels: np.ndarray, images: np.ndarray,
                            class_names, count: int = 12) -> list[dict]:
    pred = predictions.argmax(axis=1)
    wrong = np.flatnonzero(pred != labels)
    if not len(wrong):
        return []
    confidence = predictions[wrong, pred[wrong]]
    chosen = wrong[np.argsort(-confidence, kind="stable")[:count]]
    return [{"index": int(i), "true": class_names[int(labels[i])],
             "predicted": class_names[int(pred[i])],
             "png": base64.b64encode(png_bytes(images[i])).decode("ascii")} for i in chosen]
