"""Masked Autoencoders (MAE): hide most patches, reconstruct their pixels.

Paper: Masked Autoencoders Are Scalable Vision Learners (He et al., 2022) https://arxiv.org/abs/2111.06377
Shuffle the patch tokens and keep only the first 25 % (random masking, §3). A ViT encoder reads the
visible patches alone, with no mask tokens, which makes it cheap. A light decoder receives the encoded
visible tokens plus one shared learned [mask] token per hidden patch, unshuffled back into place with
position embeddings added, and predicts every patch's pixels; the MSE loss counts masked patches only.
Gate: masked-patch MSE on held-out digits (75 % of 2x2 patches hidden) <= 0.85 x the MSE of
predicting each hidden patch by the training set's mean patch at that position.
Run: python -m runnable.mae --preset tiny
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

GATE = ("masked-mse-ratio", "<=", 0.85)


@dataclass
class Config:
    image_size: int = 8  # 224 in the paper
    patch: int = 2  # 16
    channels: int = 1
    mask_ratio: float = 0.75  # §4: 75 % works best
    D: int = 64  # encoder width (ViT-L: 1024)
    layers: int = 1  # encoder blocks (24)
    heads: int = 4  # (16)
    mlp_ratio: int = 2  # MLP width / model width (4)
    D_dec: int = 32  # decoder width (512)
    dec_layers: int = 1  # decoder blocks (8)
    dec_heads: int = 4  # (16)
    learned_pos: bool = True  # the paper uses fixed 2-D sin-cos; learned ones train faster here
    norm_pix_loss: bool = False  # §3: per-patch normalised pixels as target (an option)
    epochs: int = 40
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 0.0  # 0.05 in the paper
    test_size: int = 500
    seed: int = 0
    amp_bf16: bool = False


PRESETS = {
    "tiny": Config(),
    # ViT-L/16 encoder with the default 8-block, 512-wide decoder (§4, Table 1a/1b). The paper
    # states no parameter count for this pair, so there is no params figure to check against.
    "paper": Config(
        image_size=224,
        patch=16,
        channels=3,
        D=1024,
        layers=24,
        heads=16,
        mlp_ratio=4,
        D_dec=512,
        dec_layers=8,
        dec_heads=16,
        learned_pos=False,
        norm_pix_loss=True,
        weight_decay=0.05,
    ),
    "gpu": Config(
        image_size=32,
        patch=4,
        D=384,
        layers=8,
        heads=6,
        mlp_ratio=4,
        D_dec=256,
        dec_layers=4,
        dec_heads=8,
        epochs=1000,
        batch_size=256,
        lr=1.5e-3,
        weight_decay=0.05,
        amp_bf16=True,
    ),  # digits upsampled to 32x32
}


class Block(nn.Module):
    """A pre-LN Transformer block, as in ViT: x + MSA(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, D: int, heads: int, mlp_ratio: int = 4):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(D), nn.LayerNorm(D)
        self.qkv, self.proj = nn.Linear(D, 3 * D), nn.Linear(D, D)
        self.mlp = nn.Sequential(
            nn.Linear(D, mlp_ratio * D), nn.GELU(), nn.Linear(mlp_ratio * D, D)
        )

    def forward(self, x):  # (B, T, D)
        B, T, D = x.shape
        q, k, v = (
            self.qkv(self.ln1(x)).view(B, T, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        )
        a = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(D // self.heads), -1)  # (B, h, T, T)
        x = x + self.proj((a @ v).transpose(1, 2).reshape(B, T, D))
        return x + self.mlp(self.ln2(x))


def sincos_2d(side: int, D: int) -> torch.Tensor:
    """Fixed 2-D sine-cosine position embeddings: half the channels code the row, half the column."""
    omega = 1.0 / 10000 ** (torch.arange(D // 4, dtype=torch.float32) / (D // 4))  # (D/4,)
    r, c = torch.meshgrid(
        torch.arange(side, dtype=torch.float32),
        torch.arange(side, dtype=torch.float32),
        indexing="ij",
    )
    out = [f(p.reshape(-1, 1) * omega) for p in (r, c) for f in (torch.sin, torch.cos)]
    return torch.cat(out, 1)  # (side*side, D)


def patchify(x: torch.Tensor, P: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, N, P*P*C) in raster order."""
    B, C, H, W = x.shape
    x = x.reshape(B, C, H // P, P, W // P, P).permute(0, 2, 4, 3, 5, 1)
    return x.reshape(B, (H // P) * (W // P), P * P * C)


def random_masking(B: int, N: int, ratio: float, generator=None, device="cpu"):
    """§3 'Simple implementation': shuffle by sorting random noise, keep the first (1 - ratio) N.

    Returns ids_keep (B, N_vis), ids_restore (B, N) that unshuffles, and mask (B, N): 1 = hidden."""
    N_vis = int(round(N * (1 - ratio)))
    noise = torch.rand(B, N, generator=generator).to(device)
    ids_shuffle = noise.argsort(1)  # (B, N) a random permutation
    ids_restore = ids_shuffle.argsort(1)  # its inverse
    mask = torch.ones(B, N, device=device)
    mask[:, :N_vis] = 0
    return (
        ids_shuffle[:, :N_vis],
        ids_restore,
        mask.gather(1, ids_restore),
    )  # mask in original order


class MAE(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg, side = cfg, cfg.image_size // cfg.patch
        N, patch_dim = side * side, cfg.patch**2 * cfg.channels
        self.embed = nn.Linear(patch_dim, cfg.D)  # linear patch projection
        self.register_buffer("pos", sincos_2d(side, cfg.D)[None], persistent=False)  # (1, N, D)
        if cfg.learned_pos:
            self.pos = nn.Parameter(torch.randn(1, N, cfg.D) * 0.02)
        self.encoder = nn.ModuleList(
            Block(cfg.D, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.layers)
        )
        self.enc_norm = nn.LayerNorm(cfg.D)
        self.dec_embed = nn.Linear(cfg.D, cfg.D_dec)  # encoder width -> decoder width
        self.mask_token = nn.Parameter(
            torch.randn(1, 1, cfg.D_dec) * 0.02
        )  # one shared, learned vector
        self.register_buffer(
            "dec_pos", sincos_2d(side, cfg.D_dec)[None], persistent=False
        )  # (1, N, D_dec)
        if cfg.learned_pos:
            self.dec_pos = nn.Parameter(torch.randn(1, N, cfg.D_dec) * 0.02)
        self.decoder = nn.ModuleList(
            Block(cfg.D_dec, cfg.dec_heads, cfg.mlp_ratio) for _ in range(cfg.dec_layers)
        )
        self.dec_norm = nn.LayerNorm(cfg.D_dec)
        self.pred, self.N = nn.Linear(cfg.D_dec, patch_dim), N  # predicts the pixels of each patch

    def encode(self, patches, ids_keep=None):  # (B, N, p) -> (B, N_vis, D)
        x = self.embed(patches) + self.pos
        if ids_keep is not None:  # visible patches only: no mask tokens
            x = x.gather(1, ids_keep[..., None].expand(-1, -1, x.size(-1)))
        for block in self.encoder:
            x = block(x)
        return self.enc_norm(x)

    def decode(self, latent, ids_restore):  # (B, N_vis, D) -> (B, N, p)
        y = self.dec_embed(latent)  # (B, N_vis, D_dec)
        B, N_vis, D_dec = y.shape
        y = torch.cat(
            [y, self.mask_token.expand(B, self.N - N_vis, -1)], 1
        )  # (B, N, D_dec) shuffled
        y = (
            y.gather(1, ids_restore[..., None].expand(-1, -1, D_dec)) + self.dec_pos
        )  # unshuffle, add positions
        for block in self.decoder:
            y = block(y)
        return self.pred(self.dec_norm(y))

    def forward(self, imgs, generator=None):
        patches = patchify(imgs, self.cfg.patch)  # (B, N, p)
        ids_keep, ids_restore, mask = random_masking(
            len(imgs), self.N, self.cfg.mask_ratio, generator, imgs.device
        )
        pred = self.decode(self.encode(patches, ids_keep), ids_restore)  # (B, N, p)
        target = patches
        if self.cfg.norm_pix_loss:
            target = (target - target.mean(-1, keepdim=True)) / (
                target.var(-1, keepdim=True) + 1e-6
            ).sqrt()
        per_patch = ((pred.float() - target) ** 2).mean(-1)  # (B, N)
        return (per_patch * mask).sum() / mask.sum(), pred, mask  # loss on hidden patches only


def build_model(cfg: Config) -> nn.Module:
    return MAE(cfg)


def load_digits_split(cfg: Config):
    """scikit-learn's 1,797 digits in [0, 1]; a fixed held-out test set."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32)[:, None] / 16.0  # (N, 1, 8, 8)
    if cfg.image_size != 8:
        x = F.interpolate(
            x, size=(cfg.image_size, cfg.image_size), mode="bilinear", align_corners=False
        )
    x = (x - 0.3) / 0.4  # roughly zero mean, unit variance
    y = torch.tensor(d.target)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    te, tr = perm[: cfg.test_size], perm[cfg.test_size :]
    return x[tr], y[tr], x[te], y[te]


@torch.no_grad()
def ridge_probe(f_tr, y_tr, f_te, y_te, lam=1e-2) -> float:
    """Linear probe in closed form: ridge regression onto one-hot labels, accuracy on held-out features."""
    mu, sd = f_tr.mean(0), f_tr.std(0) + 1e-6
    A, B = (
        torch.cat([(f - mu) / sd, torch.ones(len(f), 1)], 1) for f in (f_tr, f_te)
    )  # standardised + bias
    W = torch.linalg.solve(
        A.T @ A + lam * len(A) * torch.eye(A.size(1)), A.T @ F.one_hot(y_tr, 10).float()
    )
    return ((B @ W).argmax(1) == y_te).float().mean().item()


def train(cfg: Config, device: str = "cpu") -> dict:
    t0 = time.perf_counter()
    torch.manual_seed(cfg.seed)
    x_tr, y_tr, x_te, y_te = load_digits_split(cfg)
    model = build_model(cfg).to(device)
    random_feats = lambda x: model.encode(patchify(x.to(device), cfg.patch)).mean(1).float().cpu()
    with torch.no_grad():
        probe_random = ridge_probe(
            random_feats(x_tr), y_tr, random_feats(x_te), y_te
        )  # untrained encoder
    opt = torch.optim.AdamW(
        model.parameters(), lr=cfg.lr, betas=(0.9, 0.95), weight_decay=cfg.weight_decay
    )
    steps = cfg.epochs * math.ceil(len(y_tr) / cfg.batch_size)
    warm = max(1, steps // 10)  # linear warm-up, then cosine decay
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    )
    amp = dict(
        device_type="cuda", dtype=torch.bfloat16, enabled=cfg.amp_bf16 and device.startswith("cuda")
    )
    g, seen, t_train = torch.Generator().manual_seed(cfg.seed), 0, time.perf_counter()
    model.train()
    for _ in range(cfg.epochs):
        for idx in torch.randperm(len(y_tr), generator=g).split(
            cfg.batch_size
        ):  # labels are never used
            with torch.autocast(**amp):
                loss = model(x_tr[idx].to(device), g)[0]
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            seen += len(idx)
    train_s = time.perf_counter() - t_train
    model.eval()
    with torch.no_grad(), torch.autocast(**amp):
        g_test = torch.Generator().manual_seed(cfg.seed + 1)  # the same random masks for both
        mse, pred, mask = model(x_te.to(device), g_test)
        p_tr, p_te = patchify(x_tr, cfg.patch), patchify(x_te, cfg.patch).to(device)
        mean_patch = p_tr.mean(0).to(device)  # (N, p) per-position mean patch
        if cfg.norm_pix_loss:  # compare in the same target space
            p_te = (p_te - p_te.mean(-1, keepdim=True)) / (p_te.var(-1, keepdim=True) + 1e-6).sqrt()
            mean_patch = torch.zeros_like(mean_patch)
        base = (((mean_patch - p_te) ** 2).mean(-1) * mask).sum() / mask.sum()
        probe_mae = ridge_probe(
            random_feats(x_tr), y_tr, random_feats(x_te), y_te
        )  # now the trained encoder
    value = (mse / base).item()
    return {
        "metric": GATE[0],
        "value": value,
        "passed": value <= GATE[2],
        "params": sum(p.numel() for p in model.parameters()),
        "seconds": time.perf_counter() - t0,
        "images_per_s": seen / train_s,
        "masked_mse": mse.item(),
        "mean_patch_mse": base.item(),
        "probe_accuracy_mae": probe_mae,
        "probe_accuracy_random": probe_random,
    }


def main(argv=None) -> int:
    from runnable._cli import run_main

    return run_main(__doc__, PRESETS, train, argv, GATE)


if __name__ == "__main__":
    raise SystemExit(main())
