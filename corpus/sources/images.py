"""Images for image sources: decode, verify, flatten to RGB, bound the longest side, store as PNG.

Every stored image is re-encoded, so a shard never carries bytes a reader cannot decode, and
its width and height are those of the stored pixels. Decoding failures are :class:`ImageError`
with a short reason; the source decides whether that drops the image or the record.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

DEFAULT_MAX_SIDE = 512


class ImageError(Exception):
    """The bytes are not a decodable image (truncated, corrupt, unknown format, too large)."""


@dataclass(frozen=True)
class StoredImage:
    png: bytes
    width: int
    height: int
    original_width: int
    original_height: int


def bounded_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """``(width, height)`` scaled so the longest side is at most ``max_side``, aspect kept."""
    longest = max(width, height)
    if longest <= max_side:
        return width, height
    scale = max_side / longest
    return max(1, round(width * scale)), max(1, round(height * scale))


def normalize_image(data: bytes, max_side: int = DEFAULT_MAX_SIDE) -> StoredImage:
    """Decode ``data`` fully, then return it as an RGB PNG no larger than ``max_side``."""
    from PIL import Image

    if not data:
        raise ImageError("empty image file")
    try:
        with Image.open(io.BytesIO(data)) as probe:
            probe.verify()  # checksums and structure, without decoding pixels
        with Image.open(io.BytesIO(data)) as img:
            img.load()  # verify() misses truncated pixel data; load() does not
            rgb = _to_rgb(img)
    except Image.DecompressionBombError as exc:
        raise ImageError(f"too large to decode safely ({str(exc).split('(')[0].strip()})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(str(exc).splitlines()[0][:120] or type(exc).__name__) from None
    original = rgb.size
    size = bounded_size(*original, max_side)
    if size != original:
        rgb = rgb.resize(size, Image.Resampling.LANCZOS)
    out = io.BytesIO()
    rgb.save(out, format="PNG")
    return StoredImage(out.getvalue(), size[0], size[1], original[0], original[1])


def _to_rgb(img):
    """RGB pixels; transparency is composited over white (diagrams are drawn on white)."""
    from PIL import Image

    if img.mode == "RGB":
        return img.copy()
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return img.convert("RGB")
