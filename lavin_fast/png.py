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


def read_png(path):
    """-> uint8 (3, H, W) (grey expanded to RGB, alpha dropped)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != _SIG:
        raise ValueError(f"read_png: {path} is not a PNG file")
    pos, idat, hdr = 8, [], None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + n
    w, h, depth, ctype, _, _, interlace = hdr
    if depth != 8 or ctype not in _CHANNELS or interlace:
        raise ValueError(f"read_png: {path}: only 8-bit non-interlaced grey/RGB(A) PNGs are supported "
                         f"(got bit depth {depth}, colour type {ctype}, interlace {interlace})")
    bpp = _CHANNELS[ctype]
    raw = zlib.decompress(b"".join(idat))
    stride = w * bpp
    out = bytearray(h * stride)
    prev = bytearray(stride)
    for y in range(h):
        ftype = raw[y * (stride + 1)]
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
