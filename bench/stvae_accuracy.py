"""How far streaming and tiling move the ST-VAE's output from the one-pass result.

Uses the golden small model (weights of the released architecture, random) on a smooth random clip.
Relative error = ||out - one_pass|| / ||one_pass|| over the whole tensor; max = max abs difference
divided by the one-pass output's max abs value.

    python -m bench.stvae_accuracy
"""

import torch
import torch.nn.functional as F

from lavin_fast.models.stvae import AutoencoderKLSTVAE
from tests.stvae_helpers import golden


def errors(a, b):
    a, b = a.double(), b.double()
    return (a - b).norm().item() / b.norm().item(), (a - b).abs().max().item() / b.abs().max().item()


def main(frames=17, size=64):
    torch.set_num_threads(1)
    cfg, params, _ = golden()
    model = AutoencoderKLSTVAE(**cfg)
    model.load_state_dict(params, strict=True)
    torch.manual_seed(0)
    # A smooth clip (low-resolution noise, upsampled) looks more like video than white noise.
    x = F.interpolate(torch.randn(1, 3, frames, size // 8, size // 8), size=(frames, size, size),
                      mode="trilinear").clamp(-1, 1)
    mean = model.encode(x).mean
    video = model.decode(mean)
    print(f"golden small config, {frames} frames {size}x{size} -> latent {tuple(mean.shape[2:])}")
    print(f"{'what':34} {'rel err':>9} {'max err':>9}")
    for chunk in (1, 2):
        e = errors(model.encode(x, chunk_latents=chunk, norm="exact").mean, mean)
        print(f"{f'encode exact, chunk {chunk}':34} {e[0]:9.2e} {e[1]:9.2e}")
        e = errors(model.decode(mean, chunk_latents=chunk, norm="exact"), video)
        print(f"{f'decode exact, chunk {chunk}':34} {e[0]:9.2e} {e[1]:9.2e}")
    for chunk in (1, 2, 4):
        e = errors(model.encode(x, chunk_latents=chunk, norm="chunk").mean, mean)
        print(f"{f'encode per-chunk norm, chunk {chunk}':34} {e[0]:9.2e} {e[1]:9.2e}")
        e = errors(model.decode(mean, chunk_latents=chunk, norm="chunk"), video)
        print(f"{f'decode per-chunk norm, chunk {chunk}':34} {e[0]:9.2e} {e[1]:9.2e}")
    for chunk in (1, 2):
        e = errors(model.encode(x, chunk_latents=chunk, norm="two_pass").mean, mean)
        print(f"{f'encode two-pass norm, chunk {chunk}':34} {e[0]:9.2e} {e[1]:9.2e}")
        e = errors(model.decode(mean, chunk_latents=chunk, norm="two_pass"), video)
        print(f"{f'decode two-pass norm, chunk {chunk}':34} {e[0]:9.2e} {e[1]:9.2e}")
    for tile in (4, 6):
        e = errors(model.decode(mean, tile=tile), video)
        print(f"{f'decode tiled, {tile}x{tile} latent tiles':34} {e[0]:9.2e} {e[1]:9.2e}")


if __name__ == "__main__":
    main()
