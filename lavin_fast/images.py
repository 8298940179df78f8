"""Image files in and out of the in-context sampler, the way the released inference script does it.

Reading goes through Pillow, so every format Pillow knows works whatever the file is called (the
release's own samples include a JPEG named .png). On top of the release's `Image.open(f).convert("RGB")`:
the EXIF orientation is applied (a phone photo stands upright), transparent pixels are composited on
white (convert("RGB") would keep whatever colour hides under alpha 0), and 16-bit grey keeps its
brightness (convert("RGB") would clip it to white). Resizing and the [-1, 1] scaling are the release's
(torchvision's bicubic antialiased resize of the uint8 image, rounded back to uint8, then
(x / 255 - 0.5) * 2), and so is the output picture (query and result side by side, 4 px black
padding: torchvision's make_grid(nrow=2, padding=4))."""

import os
import struct
import tempfile
import zlib

import torch
import torch.nn.functional as F

# What Pillow raises on a file it cannot decode (DecompressionBombError: a header claiming a huge size).
def _decode_errors():
    from PIL import Image
    return (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error, Image.DecompressionBombError)


class ImageFileError(ValueError):
    """An image file that cannot be read or written; the message names the path and the reason."""


def _rgb_tensor(im):
    w, h = im.size
    data = torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8)
    return data.view(h, w, 3).permute(2, 0, 1).contiguous()


def _to_rgb(im):
    """Any Pillow mode -> 8-bit RGB: alpha (and palette transparency) over white; 16/32-bit grey
    scaled to 8 bits."""
    from PIL import Image
    if im.mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        im = im.convert("I")
    if im.mode in ("I", "F"):  # 16-bit PNG grey arrives as "I" (0..65535): keep the top 8 bits
        im = im.point(lambda v: v / 256).convert("L")
    if im.mode == "P" and "transparency" in im.info or im.mode in ("PA", "LA", "La", "RGBa", "RGBA"):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return im.convert("RGB")


def read_image(path):
    """An image file -> uint8 RGB tensor (3, H, W). Raises ImageFileError naming the file."""
    from PIL import Image, ImageOps
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)  # a copy with the orientation applied
            im.load()
            return _rgb_tensor(_to_rgb(im))
    except _decode_errors() as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e) or type(e).__name__
        raise ImageFileError(f"cannot read image {path}: {reason}") from e


def image_format(path):
    """Pillow's format name for the file's extension, or ImageFileError."""
    from PIL import Image
    ext = os.path.splitext(str(path))[1].lower()
    fmt = Image.registered_extensions().get(ext)
    if fmt is None:
        raise ImageFileError(f"cannot write {path}: unknown image extension {ext!r} (use .png, .jpg or .webp)")
    return fmt


def write_image(path, image):
    """uint8 (3, H, W) -> file; the format follows the extension (PNG at the release's compression 9).
    Written to a temporary file beside it and renamed, so a failure leaves no partial file."""
    from PIL import Image
    fmt = image_format(path)
    if image.dtype != torch.uint8 or image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"write_image: image must be uint8 (3, H, W), got {image.dtype} {tuple(image.shape)}")
    h, w = image.shape[1:]
    # clone: a storage of exactly these pixels (a contiguous view may share a larger one)
    hwc = image.detach().cpu().permute(1, 2, 0).clone(memory_format=torch.contiguous_format)
    im = Image.frombytes("RGB", (w, h), bytes(hwc.untyped_storage()))
    options = {"compress_level": 9} if fmt == "PNG" else {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".lavin_fast_", suffix=os.path.splitext(str(path))[1], dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            im.save(f, format=fmt, **options)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def resize_for_model(image, height, width):
    """uint8 (3, H, W) -> float32 (3, height, width) in [-1, 1], as the release: bicubic antialiased
    resize of the uint8 image (align_corners=False), rounded and clamped to uint8, then (x/255-0.5)*2."""
    x = image.float()[None]
    if tuple(image.shape[1:]) != (height, width):
        x = F.interpolate(x, size=(height, width), mode="bicubic", align_corners=False, antialias=True)
        x = x.clamp_(0, 255).round_()
    return (x[0] / 255.0 - 0.5) * 2


def model_output_to_u8(x):
    """Decoded image in [-1, 1] -> uint8, as the release: (x / 2 + 0.5).clamp(0, 1) in the model's
    dtype, then * 255 in fp32, truncated."""
    return ((x / 2 + 0.5).clamp(0, 1).float() * 255.0).to(torch.uint8)


def model_input_to_u8(x):
    """A model-input image in [-1, 1] back to uint8 as the release shows the query: (x + 1) * 127.5, truncated."""
    return ((x.float() + 1.0) * 127.5).clamp(0, 255).to(torch.uint8)


SIDE_BY_SIDE_PADDING = 4


def side_by_side(left, right, padding=SIDE_BY_SIDE_PADDING):
    """Two uint8 (3, H, W) images in one row with `padding` black pixels around and between them
    (torchvision's make_grid(nrow=2, padding=4), which the release writes)."""
    if left.shape != right.shape:
        raise ValueError(f"side_by_side: images must have one shape, got {tuple(left.shape)} and {tuple(right.shape)}")
    _, h, w = left.shape
    out = torch.zeros(3, h + 2 * padding, 2 * w + 3 * padding, dtype=torch.uint8)
    out[:, padding:padding + h, padding:padding + w] = left
    out[:, padding:padding + h, w + 2 * padding:2 * w + 2 * padding] = right
    return out
