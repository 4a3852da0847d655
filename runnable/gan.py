"""Generative Adversarial Nets (MLP generator and maxout discriminator on a ring of 8 Gaussians).

Paper: Generative Adversarial Nets (Goodfellow et al., 2014) https://arxiv.org/abs/1406.2661
A generator G maps noise z ~ p_z to samples and a discriminator D outputs the probability that its input
is real; D ascends V(D, G) = E_x[log D(x)] + E_z[log(1 - D(G(z)))] while G descends it (eq. 1), with k
D-steps per G-step (Algorithm 1). G uses the non-saturating loss -log D(G(z)) of sec. 3. Here p_data is
a 2-D mixture of 8 Gaussians on a circle, so we can check whether G found every mode.
Gate: modes-covered >= 0.75 (a mode is covered when >= 2.5 % of 5,000 fresh samples of G land within
3 sigma of its centre) and >= 50 % of all samples land within 3 sigma of some centre; tiny reaches 1.0.
Run: python -m runnable.gan --preset tiny
"""

import math  # noqa: E401
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

GATE = ("modes-covered", ">=", 0.75)
QUALITY_MIN = 0.5  # share of samples within 3 sigma of a mode that the gate also asks for


@dataclass
class Config:
    z_dim: int = 16  # noise dimension (100 in the authors' MNIST model)
    g_hidden: tuple = (128, 128)  # ReLU layers of G (sec. 5: rectifier + sigmoid activations)
    d_units: tuple = (64, 64)  # maxout units of D (sec. 5: maxout activations)
    d_pieces: int = 3  # linear pieces per maxout unit
    x_dim: int = 2  # data dimension
    modes: int = 8  # Gaussians on the ring
    radius: float = 2.0
    sigma: float = 0.1
    k: int = 1  # D-steps per G-step (Algorithm 1; the paper used k = 1)
    steps: int = 1500  # G-steps
    batch_size: int = 128  # m in Algorithm 1
    lr: float = 1e-3
    beta1: float = 0.5  # the paper used momentum SGD; Adam is today's default for a small GAN
    n_eval: int = 5000
    seed: int = 0
    amp_bf16: bool = False


PRESETS = {
    "tiny": Config(),
    # MNIST-scale widths (our choice: the paper names the activations, not the sizes): z of 100, two 1200-unit ReLU
    # layers in G, two maxout layers of 240 units x 5 pieces in D.
    "paper": Config(z_dim=100, g_hidden=(1200, 1200), d_units=(240, 240), d_pieces=5, steps=5000),
    "gpu": Config(
        z_dim=64,
        g_hidden=(512, 512, 512),
        d_units=(512, 512),
        d_pieces=4,
        modes=25,
        radius=4.0,
        steps=20000,
        batch_size=1024,
        n_eval=50000,
        amp_bf16=True,
    ),
}


class Maxout(nn.Module):
    """h_i = max_j (x W_ij + b_ij) over `pieces` linear maps (Goodfellow et al. 2013)."""

    def __init__(self, d_in: int, units: int, pieces: int):
        super().__init__()
        self.units, self.pieces = units, pieces
        self.linear = nn.Linear(d_in, units * pieces)

    def forward(self, x):  # (B, d_in)
        return self.linear(x).unflatten(-1, (self.units, self.pieces)).amax(-1)  # (B, units)


class Generator(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        layers, d = [], cfg.z_dim
        for h in cfg.g_hidden:
            layers += [nn.Linear(d, h), nn.ReLU()]
            d = h
        self.net = nn.Sequential(
            *layers, nn.Linear(d, cfg.x_dim)
        )  # linear output: data is real-valued

    def forward(self, z):  # (B, z_dim) -> (B, x_dim)
        return self.net(z)


class Discriminator(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        layers, d = [], cfg.x_dim
        for u in cfg.d_units:
            layers.append(Maxout(d, u, cfg.d_pieces))
            d = u
        self.net = nn.Sequential(*layers, nn.Linear(d, 1))

    def forward(self, x):  # (B, x_dim) -> (B,) logit of D(x)
        return self.net(x).squeeze(-1)


class GAN(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.G, self.D = Generator(cfg), Discriminator(cfg)


def build_model(cfg: Config) -> nn.Module:
    return GAN(cfg)


def centres(cfg: Config) -> torch.Tensor:
    a = torch.arange(cfg.modes) * 2 * math.pi / cfg.modes
    return cfg.radius * torch.stack([a.cos(), a.sin()], 1)  # (modes, 2)


def sample_data(cfg: Config, n: int, g: torch.Generator) -> torch.Tensor:
    """x ~ p_data: pick a mode uniformly, add isotropic Gaussian noise of std sigma."""
    mu = centres(cfg)[torch.randint(cfg.modes, (n,), generator=g)]
    return mu + cfg.sigma * torch.randn(n, 2, generator=g)  # (n, 2)


def mode_coverage(x: torch.Tensor, cfg: Config, share: float = 0.025):
    """(fraction of modes that get >= `share` of the samples within 3 sigma, fraction of such samples)."""
    d = torch.cdist(x.float(), centres(cfg))  # (n, modes)
    dist, j = d.min(1)
    good = dist <= 3 * cfg.sigma  # a "high-quality" sample
    counts = torch.bincount(j[good], minlength=cfg.modes).float() / len(x)
    return (counts >= share).float().mean().item(), good.float().mean().item()


def mmd(x: torch.Tensor, y: torch.Tensor, bandwidth: float = 0.5) -> float:
    """Squared maximum mean discrepancy with one fixed RBF kernel (biased estimate)."""
    k = lambda a, b: torch.exp(-(torch.cdist(a, b) ** 2) / (2 * bandwidth**2)).mean()
    return (k(x, x) + k(y, y) - 2 * k(x, y)).item()


@torch.no_grad()
def evaluate(G: nn.Module, cfg: Config, device: str = "cpu") -> dict:
    """Fresh noise through G, compared with the known mixture and with held-out real samples."""
    g = torch.Generator().manual_seed(cfg.seed + 99)
    z = torch.randn(cfg.n_eval, cfg.z_dim, generator=g).to(device)
    x_fake = G(z).float().cpu()
    covered, quality = mode_coverage(x_fake, cfg)
    held_out = sample_data(cfg, 2000, g)
    return {"modes_covered": covered, "high_quality": quality, "mmd": mmd(x_fake[:2000], held_out)}


def train(cfg: Config, device: str = "cpu") -> dict:
    torch.manual_seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed + 1)
    model = build_model(cfg).to(device)
    G, D = model.G, model.D
    opt_D = torch.optim.Adam(D.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999))
    opt_G = torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999))
    amp = dict(
        device_type="cuda", dtype=torch.bfloat16, enabled=cfg.amp_bf16 and device.startswith("cuda")
    )
    ones = torch.ones(cfg.batch_size, device=device)
    start = time.perf_counter()
    for _ in range(cfg.steps):
        for _ in range(cfg.k):  # Algorithm 1: k steps on D
            x = sample_data(cfg, cfg.batch_size, g).to(
                device
            )  # minibatch of m examples from p_data
            z = torch.randn(cfg.batch_size, cfg.z_dim, device=device)
            with torch.autocast(**amp):
                logit_real, logit_fake = D(x).float(), D(G(z).detach()).float()
            # ascend log D(x) + log(1 - D(G(z)))  ==  descend BCE(real -> 1, fake -> 0)
            loss_D = F.binary_cross_entropy_with_logits(
                logit_real, ones
            ) + F.binary_cross_entropy_with_logits(logit_fake, 0 * ones)
            opt_D.zero_grad()
            loss_D.backward()
            opt_D.step()
        z = torch.randn(cfg.batch_size, cfg.z_dim, device=device)
        with torch.autocast(**amp):
            logit_fake = D(G(z)).float()
        loss_G = F.binary_cross_entropy_with_logits(
            logit_fake, ones
        )  # sec. 3: maximise log D(G(z))
        opt_G.zero_grad()
        loss_G.backward()
        opt_G.step()
    seconds = time.perf_counter() - start
    ev = evaluate(G, cfg, device)
    value = ev["modes_covered"]
    return {
        "metric": GATE[0],
        "value": value,
        "passed": value >= GATE[2] and ev["high_quality"] >= QUALITY_MIN,
        **ev,
        "loss_D": loss_D.item(),
        "loss_G": loss_G.item(),
        "params": sum(p.numel() for p in model.parameters()),
        "seconds": seconds,
    }


def main(argv=None) -> int:
    from runnable._cli import run_main

    return run_main(__doc__, PRESETS, train, argv, GATE)


if __name__ == "__main__":
    raise SystemExit(main())
