"""Image files through Pillow (lavin_fast.images): every PNG colour type and bit depth, JPEG (also
under a .png name), WebP, EXIF orientation, alpha over white; the release's resize and output picture."""

import pytest
import torch
from PIL import Image

from lavin_fast.images import (ImageFileError, model_input_to_u8, model_output_to_u8, read_image,
                               resize_for_model, side_by_side, write_image)


def _rgb(h=6, w=5, seed=0):
    return torch.randint(0, 256, (h, w, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def _pil(hwc, mode="RGB"):
    return Image.frombytes(mode, (hwc.shape[1], hwc.shape[0]), bytes(hwc.contiguous().view(-1).tolist()))


def _chw(hwc):
    return hwc.permute(2, 0, 1).contiguous()


def test_rgb_png_round_trip_is_exact(tmp_path):
    img = _chw(_rgb(7, 5))
    write_image(tmp_path / "a.png", img)
    assert torch.equal(read_image(tmp_path / "a.png"), img)
    assert Image.open(tmp_path / "a.png").format == "PNG"


def test_grey_and_palette(tmp_path):
    grey = _rgb()[..., 0]
    _pil(grey[..., None].contiguous(), "L").save(tmp_path / "l.png")
    assert torch.equal(read_image(tmp_path / "l.png"), grey.expand(3, *grey.shape))
    pal = _pil(_rgb()).quantize(colors=16)
    pal.save(tmp_path / "p.png")
    assert Image.open(tmp_path / "p.png").mode == "P"
    assert torch.equal(read_image(tmp_path / "p.png"), _chw(torch.tensor(list(pal.convert("RGB").tobytes()),
                                                                         dtype=torch.uint8).view(6, 5, 3)))
    bw = Image.new("1", (3, 2))
    bw.putpixel((1, 0), 1)
    bw.save(tmp_path / "b.png")
    expect = torch.zeros(3, 2, 3, dtype=torch.uint8)
    expect[:, 0, 1] = 255
    assert torch.equal(read_image(tmp_path / "b.png"), expect)


def test_alpha_is_composited_on_white(tmp_path):
    rgba = torch.cat([_rgb(), torch.tensor([0, 255, 128], dtype=torch.uint8).repeat(10)[:30].view(6, 5, 1)], -1)
    _pil(rgba, "RGBA").save(tmp_path / "rgba.png")
    got = read_image(tmp_path / "rgba.png").int()
    a = rgba[..., 3:].int().permute(2, 0, 1)
    expect = (_chw(rgba[..., :3]).int() * a + 255 * (255 - a) + 127) // 255
    assert (got - expect).abs().max() <= 1
    assert (got[:, a[0] == 0] == 255).all()  # fully transparent: white, whatever colour hides there
    la = torch.stack([rgba[..., 0], rgba[..., 3]], -1)
    _pil(la, "LA").save(tmp_path / "la.png")
    got = read_image(tmp_path / "la.png").int()
    assert (got[:, a[0] == 0] == 255).all() and torch.equal(got[:, a[0] == 255], rgba[..., 0].int()[a[0] == 255]
                                                            .expand(3, -1))
    pal = Image.new("P", (2, 1))
    pal.putpalette([200, 10, 10, 10, 200, 10])
    pal.putpixel((1, 0), 1)
    pal.save(tmp_path / "pt.png", transparency=0)  # palette entry 0 transparent (tRNS)
    assert read_image(tmp_path / "pt.png")[:, 0].tolist() == [[255, 10], [255, 200], [255, 10]]


def test_sixteen_bit_grey_keeps_its_brightness(tmp_path):
    im = Image.new("I;16", (4, 1))
    for x, v in enumerate([0, 256 * 40, 65535, 256 * 200 + 255]):
        im.putpixel((x, 0), v)
    im.save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    assert read_image(tmp_path / "g16.png")[0, 0].tolist() == [0, 40, 255, 200]


def test_sixteen_bit_rgb_and_rgba_pngs(tmp_path):
    """Hand-made 16-bit PNGs (Pillow writes 8-bit RGB only): Pillow keeps the high byte."""
    import struct
    import zlib

    def png16(colour_type, channels, values):
        h, w = values.shape[:2]
        raw = b"".join(b"\x00" + struct.pack(f">{w * channels}H", *values[y].reshape(-1).tolist()) for y in range(h))

        def chunk(k, d):
            return struct.pack(">I", len(d)) + k + d + struct.pack(">I", zlib.crc32(k + d) & 0xFFFFFFFF)
        return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))

    v = torch.randint(0, 65536, (3, 4, 3), generator=torch.Generator().manual_seed(1))
    (tmp_path / "rgb16.png").write_bytes(png16(2, 3, v))
    assert torch.equal(read_image(tmp_path / "rgb16.png"), _chw((v >> 8).to(torch.uint8)))
    va = torch.cat([v, torch.full((3, 4, 1), 65535)], -1)
    (tmp_path / "rgba16.png").write_bytes(png16(6, 4, va))
    assert torch.equal(read_image(tmp_path / "rgba16.png"), _chw((v >> 8).to(torch.uint8)))
    ga = torch.stack([v[..., 0], torch.full((3, 4), 65535)], -1)
    (tmp_path / "la16.png").write_bytes(png16(4, 2, ga))
    assert torch.equal(read_image(tmp_path / "la16.png"), (v[..., 0] >> 8).to(torch.uint8).expand(3, -1, -1))


def _smooth(h=32, w=48):
    y, x = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    return torch.stack([x * 5, y * 7, (x + y) * 3]).clamp(0, 255).to(torch.uint8)


def test_jpeg_also_under_a_png_name_and_webp(tmp_path):
    img = _smooth()
    pil = _pil(img.permute(1, 2, 0))
    pil.save(tmp_path / "photo.png", format="JPEG", quality=95)  # the release's zootopia.png is this
    pil.save(tmp_path / "photo.jpg", quality=95)
    pil.save(tmp_path / "photo.webp", lossless=True)
    for name, tol in (("photo.png", 12), ("photo.jpg", 12), ("photo.webp", 0)):
        got = read_image(tmp_path / name)
        assert got.shape == img.shape and (got.int() - img.int()).abs().max() <= tol, name


@pytest.mark.parametrize("orientation,turn", [(1, lambda t: t), (3, lambda t: t.rot90(2, (1, 2))),
                                              (6, lambda t: t.rot90(-1, (1, 2))), (8, lambda t: t.rot90(1, (1, 2))),
                                              (2, lambda t: t.flip(2))])
def test_exif_orientation_is_applied(tmp_path, orientation, turn):
    img = _chw(_rgb(4, 6))
    exif = Image.Exif()
    exif[0x0112] = orientation
    _pil(img.permute(1, 2, 0)).save(tmp_path / "o.png", exif=exif)
    assert torch.equal(read_image(tmp_path / "o.png"), turn(img))


@pytest.mark.parametrize("data", [b"", b"GIF89a....", b"\x89PNG\r\n\x1a\n" + b"\x00" * 30, b"\xff\xd8\xff\xe0junk"],
                         ids=["empty", "gif-header", "png-header-only", "jpeg-header-only"])
def test_unreadable_files_name_the_path(tmp_path, data):
    path = tmp_path / "bad.png"
    path.write_bytes(data)
    with pytest.raises(ImageFileError, match=r"cannot read image .*bad\.png"):
        read_image(path)


def test_truncated_and_missing_files(tmp_path):
    write_image(tmp_path / "ok.png", _smooth())
    data = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageFileError, match=r"cannot read image .*cut\.png"):
        read_image(tmp_path / "cut.png")
    with pytest.raises(ImageFileError, match=r"cannot read image .*none\.png: No such file"):
        read_image(tmp_path / "none.png")
    with pytest.raises(ImageFileError, match=r"cannot read image"):
        read_image(tmp_path)


def test_write_refuses_unknown_extension_and_leaves_nothing(tmp_path):
    with pytest.raises(ImageFileError, match=r"unknown image extension '\.xyz'"):
        write_image(tmp_path / "a.xyz", _smooth())
    with pytest.raises(ValueError, match="uint8 \\(3, H, W\\)"):
        write_image(tmp_path / "a.png", _smooth().float())
    assert list(tmp_path.iterdir()) == []


def test_resize_is_bicubic_antialiased_like_the_release():
    # A 1-pixel checkerboard shrunk 3x: antialiasing gives flat grey; without it every output pixel
    # lands on one source pixel and the result is a 0/255 checkerboard again.
    board = ((torch.arange(66)[:, None] + torch.arange(66)[None]) % 2 * 255).to(torch.uint8).expand(3, 66, 66)
    x = resize_for_model(board, 22, 22)
    assert x.shape == (3, 22, 22) and x.dtype == torch.float32
    assert (x - x.mean()).abs().max() < 0.02 and abs(x.mean()) < 0.02
    # Against Pillow's own bicubic (also antialiased, its own kernel): within a few levels on a photo-like image.
    img = _smooth(48, 64)
    ours = ((resize_for_model(img, 24, 40) / 2 + 0.5) * 255).round()
    pil = _pil(img.permute(1, 2, 0)).resize((40, 24), Image.BICUBIC)
    theirs = torch.tensor(list(pil.tobytes()), dtype=torch.float32).view(24, 40, 3).permute(2, 0, 1)
    assert (ours - theirs).abs().max() <= 3
    # The release's scaling of uint8 values to [-1, 1], unchanged at the same size.
    assert torch.equal(resize_for_model(img, 48, 64), (img.float() / 255.0 - 0.5) * 2)


def test_output_conversions_and_side_by_side():
    x = torch.tensor([-1.5, -1.0, 0.0, 0.999, 1.0, 2.0]).view(1, 1, 6).expand(3, 1, 6)
    assert model_output_to_u8(x)[0, 0].tolist() == [0, 0, 127, 254, 255, 255]
    assert model_input_to_u8(x)[0, 0].tolist() == [0, 0, 127, 254, 255, 255]
    a, b = _chw(_rgb(5, 7, 1)), _chw(_rgb(5, 7, 2))
    pic = side_by_side(a, b)
    assert pic.shape == (3, 5 + 8, 2 * 7 + 12)  # make_grid(nrow=2, padding=4)
    assert torch.equal(pic[:, 4:9, 4:11], a) and torch.equal(pic[:, 4:9, 15:22], b)
    mask = torch.ones(pic.shape[1:], dtype=torch.bool)
    mask[4:9, 4:11] = False
    mask[4:9, 15:22] = False
    assert (pic[:, mask] == 0).all()
    with pytest.raises(ValueError, match="one shape"):
        side_by_side(a, b[:, :4])
