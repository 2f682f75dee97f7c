"""image: resize and/or normalize images with Pillow.

`etl_args` (or the environment's `IMAGE_ARGS`) is a comma-separated list of operations:
`resize=WxH` (exact size), `fit=N` (longest side N, aspect kept), `normalize` (autocontrast
to the full 0-255 range), `gray`, `format=png|jpeg|webp` (default: the input's format, else png).
"""

from __future__ import annotations

import io
import os

from PIL import Image, ImageOps, UnidentifiedImageError

from etl.server import TransformError, Transformer, main


def _size(text: str) -> tuple[int, int]:
    w, sep, h = text.lower().partition("x")
    if not sep or not w.isdigit() or not h.isdigit() or int(w) <= 0 or int(h) <= 0:
        raise TransformError(f"invalid size {text!r}: expected WxH, e.g. 224x224")
    return int(w), int(h)


class ImageTransform(Transformer):
    """Resizes and normalizes each image."""

    blocking = True

    def transform(self, data: bytes, path: str, etl_args: str) -> bytes:
        ops = [o.strip() for o in (etl_args or os.environ.get("IMAGE_ARGS", "")).split(",") if o.strip()]
        try:
            img: Image.Image = Image.open(io.BytesIO(data))
            img.load()
        except (UnidentifiedImageError, OSError) as exc:
            raise TransformError(f"not an image: {exc}") from exc
        fmt = (img.format or "PNG").upper()
        for op in ops:
            key, _, value = op.partition("=")
            if key == "resize":
                img = img.resize(_size(value))
            elif key == "fit":
                if not value.isdigit() or int(value) <= 0:
                    raise TransformError(f"invalid fit {value!r}: expected a positive number of pixels")
                img = img.copy()
                img.thumbnail((int(value), int(value)))
            elif key == "normalize":
                img = ImageOps.autocontrast(img.convert("RGB") if img.mode not in ("L", "RGB") else img)
            elif key == "gray":
                img = img.convert("L")
            elif key == "format":
                fmt = value.upper().replace("JPG", "JPEG")
            else:
                raise TransformError(f"unknown operation {op!r}")
        if fmt == "JPEG" and img.mode not in ("L", "RGB"):
            img = img.convert("RGB")
        out = io.BytesIO()
        try:
            img.save(out, format=fmt)
        except (KeyError, ValueError, OSError) as exc:
            raise TransformError(f"cannot write {fmt}: {exc}") from exc
        return out.getvalue()


if __name__ == "__main__":
    main(ImageTransform)
