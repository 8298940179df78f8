"""Minimal PNG reading and writing with zlib + struct (PIL is not a dependency).

Reads 8-bit greyscale, grey+alpha, RGB and RGBA non-interlaced PNGs (every filter type); writes 8-bit
RGB. Images are uint8 tensors (3, H, W)."""

import struct
import zlib

import torch

_SIG = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}


def _chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def write_png(path, image):
    """image: uint8 (3, H, W) or (H, W, 3)."""
    img = image if image.shape[-1] == 3 and image.dim() == 3 and image.shape[0] != 3 else image.permute(1, 2, 0)
    img = img.to(torch.uint8).contiguous()
    h, w, _ = img.shape
    raw = b"".join(b"\x00" + img[y].numpy().tobytes() for y in range(h))
    with open(path, "wb") as f:
        f.write(_SIG + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + _chunk(b"IDAT", zlib.compress(raw, 6)) + _chunk(b"IEND", b""))


def _paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def _chunks(data, path):
    """(kind, body) of each chunk up to IEND, with bounds and CRCs checked."""
    pos = 8
    while True:
        if pos + 12 > len(data):
            raise ValueError(f"read_png: {path}: truncated (no IEND chunk)")
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if pos + 12 + n > len(data):
            raise ValueError(f"read_png: {path}: truncated {kind!r} chunk")
        body = data[pos + 8:pos + 8 + n]
        (crc,) = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])
        if zlib.crc32(kind + body) & 0xFFFFFFFF != crc:
            raise ValueError(f"read_png: {path}: corrupt {kind!r} chunk (CRC mismatch)")
        yield kind, body
        if kind == b"IEND":
            return
        pos += 12 + n


def read_png(path):
    """-> uint8 (3, H, W) (grey expanded to RGB, alpha dropped). A file that is not a valid PNG of a
    supported kind raises ValueError (OSError when it cannot be read)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != _SIG:
        raise ValueError(f"read_png: {path} is not a PNG file")
    idat, hdr = [], None
    for kind, body in _chunks(data, path):
        if hdr is None and kind != b"IHDR":
            raise ValueError(f"read_png: {path}: the first chunk must be IHDR, got {kind!r}")
        if kind == b"IHDR":
            if hdr is not None or len(body) != 13:
                raise ValueError(f"read_png: {path}: bad IHDR chunk")
            hdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
    w, h, depth, ctype, compression, filter_method, interlace = hdr
    if w == 0 or h == 0 or compression or filter_method:
        raise ValueError(f"read_png: {path}: bad IHDR (size {w}x{h}, compression {compression}, filter method "
                         f"{filter_method})")
    if depth != 8 or ctype not in _CHANNELS or interlace:
        raise ValueError(f"read_png: {path}: only 8-bit non-interlaced grey/RGB(A) PNGs are supported "
                         f"(got bit depth {depth}, colour type {ctype}, interlace {interlace})")
    bpp = _CHANNELS[ctype]
    try:
        raw = zlib.decompress(b"".join(idat))
    except zlib.error as e:
        raise ValueError(f"read_png: {path}: corrupt image data ({e})") from None
    stride = w * bpp
    if len(raw) != h * (stride + 1):
        raise ValueError(f"read_png: {path}: image data holds {len(raw)} bytes, {w}x{h} needs {h * (stride + 1)}")
    out = bytearray(h * stride)
    prev = bytearray(stride)
    for y in range(h):
        ftype = raw[y * (stride + 1)]
        if ftype > 4:
            raise ValueError(f"read_png: {path}: row {y} has filter type {ftype} (valid: 0-4)")
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if ftype == 2:  # Up: no dependence along the row, so no Python loop
            line = bytearray(((torch.frombuffer(line, dtype=torch.uint8).int()
                               + torch.frombuffer(prev, dtype=torch.uint8).int()) & 255).byte().numpy().tobytes())
        for x in (range(stride) if ftype in (1, 3, 4) else ()):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if ftype == 1:
                line[x] = (line[x] + a) & 255
            elif ftype == 2:
                line[x] = (line[x] + b) & 255
            elif ftype == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif ftype == 4:
                line[x] = (line[x] + _paeth(a, b, c)) & 255
        out[y * stride:(y + 1) * stride] = line
        prev = line
    img = torch.frombuffer(out, dtype=torch.uint8).reshape(h, w, bpp).permute(2, 0, 1)
    if bpp <= 2:
        img = img[:1].expand(3, h, w)
    return img[:3].contiguous()
