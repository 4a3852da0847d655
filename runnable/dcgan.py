"""DCGAN: all-convolutional generator and discriminator trained adversarially on digits.

Paper: Unsupervised Representation Learning with Deep Convolutional Generative Adversarial Networks (Radford et al., 2016) https://arxiv.org/abs/1511.06434
The GAN game of Goodfellow et al., made stable with an architecture (sec. 3): no pooling, only strided
convolutions in D and fractionally-strided (transposed) ones in G; batchnorm in both nets except G's output
and D's input layer; ReLU in G with tanh at the output, LeakyReLU (slope 0.2) in D; no hidden FC layers;
Adam with lr 2e-4 and beta1 = 0.5, weights from N(0, 0.02) (sec. 4). Here: scikit-learn's 8x8 digits.
Gate: classifier-score = exp(E_x KL(p(y|x) || p(y))) of 2,000 generated images, where p(y|x) is a digit
classifier trained on real training digits: >= 5 (10 = confident, evenly spread); tiny ~6.5, untrained G ~1.
Run: python -m runnable.dcgan --preset tiny
"""

import math  # noqa: E401
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

GATE = ("classifier-score", ">=", 5.0)


@dataclass
class Config:
    image_size: int = 16  # digits upsampled from 8x8 (64 for the paper's LSUN model)
    nc: int = 1  # image channels (3 for LSUN)
    nz: int = 32  # z dimension (100 in the paper, uniform noise)
    ngf: int = 16  # G width at the last hidden layer; doubles at every coarser one
    ndf: int = 16  # D width at the first layer; doubles at every finer one
    steps: int = 500
    batch_size: int = 64  # 128 in the paper
    lr: float = 2e-4  # sec. 4: Adam, learning rate 0.0002
    beta1: float = 0.5  # sec. 4: beta1 = 0.5 instead of 0.9
    slope: float = 0.2  # sec. 4: LeakyReLU slope
    n_eval: int = 2000
    test_size: int = 300  # held-out real digits (classifier check only)
    seed: int = 0
    amp_bf16: bool = False


PRESETS = {
    "tiny": Config(),
    # Fig. 1: z (100) -> project & reshape to 4x4x1024 -> 8x8x512 -> 16x16x256 -> 32x32x128 -> 64x64x3.
    "paper": Config(image_size=64, nc=3, nz=100, ngf=128, ndf=128, batch_size=128, steps=5000),
    "gpu": Config(
        image_size=32,
        nz=100,
        ngf=64,
        ndf=64,
        batch_size=128,
        steps=20000,
        n_eval=10000,
        amp_bf16=True,
    ),
}


class Generator(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        n_up = int(math.log2(cfg.image_size // 4))  # 4x4 -> image_size, one stride-2 layer each
        c = cfg.ngf * 2 ** (n_up - 1)  # 1024 at 4x4 for the paper's 64x64 model
        self.project = nn.Linear(cfg.nz, c * 16, bias=False)  # Fig. 1: "project and reshape"
        self.bn0, self.c0 = nn.BatchNorm1d(c * 16), c
        layers = []
        for i in range(n_up):
            last = i == n_up - 1
            c_out = cfg.nc if last else c // 2
            layers.append(
                nn.ConvTranspose2d(c, c_out, 4, stride=2, padding=1, bias=last)
            )  # fractionally strided
            layers += (
                [nn.Tanh()] if last else [nn.BatchNorm2d(c_out), nn.ReLU()]
            )  # no BN at G's output
            c = c_out
        self.net = nn.Sequential(*layers)

    def forward(self, z):  # (B, nz)
        h = F.relu(self.bn0(self.project(z))).view(len(z), self.c0, 4, 4)  # (B, c0, 4, 4)
        return self.net(h)  # (B, nc, S, S) in [-1, 1]


class Discriminator(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        n_down = int(math.log2(cfg.image_size // 4))
        layers, c = [], cfg.nc
        for i in range(n_down):
            c_out = cfg.ndf * 2**i
            layers.append(
                nn.Conv2d(c, c_out, 4, stride=2, padding=1, bias=i == 0)
            )  # strided conv, no pooling
            layers += ([] if i == 0 else [nn.BatchNorm2d(c_out)]) + [
                nn.LeakyReLU(cfg.slope)
            ]  # no BN at D's input
            c = c_out
        self.net = nn.Sequential(*layers)
        self.out = nn.Linear(c * 16, 1)  # sec. 3: last conv flattened -> one sigmoid

    def forward(self, x):  # (B, nc, S, S)
        return self.out(self.net(x).flatten(1)).squeeze(-1)  # (B,) logit of D(x)


class DCGAN(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.G, self.D = Generator(cfg), Discriminator(cfg)
        for m in self.modules():  # sec. 4: N(0, 0.02) initialisation
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                nn.init.normal_(m.weight, 0.0, 0.02)
            elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                nn.init.normal_(m.weight, 1.0, 0.02)


def build_model(cfg: Config) -> nn.Module:
    return DCGAN(cfg)


def load_digits_split(cfg: Config):
    """Digits (N, nc, S, S) in [-1, 1], bilinearly upsampled from 8x8; a fixed held-out split of test_size."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32)[:, None] / 16.0 * 2 - 1  # (N, 1, 8, 8)
    x = F.interpolate(x, size=cfg.image_size, mode="bilinear", align_corners=False).clamp(-1, 1)
    x, y = x.repeat(1, cfg.nc, 1, 1), torch.tensor(d.target)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    te, tr = perm[: cfg.test_size], perm[cfg.test_size :]
    return x[tr], y[tr], x[te], y[te]


def to_8x8(x):  # (B, nc, S, S) -> (B, 64): what the judge sees
    return F.adaptive_avg_pool2d(x.float().mean(1, keepdim=True), 8).flatten(1)


def train_judge(x, y, seed: int) -> nn.Module:
    """The digit classifier behind the score: a small MLP on 8x8 real training digits (full-batch Adam)."""
    torch.manual_seed(seed)
    judge = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    opt = torch.optim.Adam(judge.parameters(), lr=3e-3, weight_decay=1e-4)
    for _ in range(300):
        loss = F.cross_entropy(judge(to_8x8(x)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return judge.eval()


@torch.no_grad()
def classifier_score(judge: nn.Module, x) -> float:
    """exp(E_x KL(p(y|x) || p(y))), the Inception score with our digit classifier: 1 (useless) .. 10."""
    p_yx = judge(to_8x8(x)).softmax(-1)  # (N, 10)
    p_y = p_yx.mean(0, keepdim=True)  # (1, 10) marginal over samples
    kl = (p_yx * (p_yx.clamp_min(1e-12).log() - p_y.log())).sum(1)
    return kl.mean().exp().item()


@torch.no_grad()
def generate(G: nn.Module, cfg: Config, n: int, device: str = "cpu"):
    G.eval()
    z = (
        torch.rand(n, cfg.nz, generator=torch.Generator().manual_seed(cfg.seed + 99)) * 2 - 1
    )  # held-out noise
    return torch.cat([G(zb.to(device)).float().cpu() for zb in z.split(500)])


def train(cfg: Config, device: str = "cpu") -> dict:
    torch.manual_seed(cfg.seed)
    x_tr, y_tr, x_te, y_te = load_digits_split(cfg)
    judge = train_judge(x_tr, y_tr, cfg.seed)
    judge_accuracy = (judge(to_8x8(x_te)).argmax(1) == y_te).float().mean().item()
    torch.manual_seed(cfg.seed)
    model = build_model(cfg).to(device)
    G, D = model.G, model.D
    opt_D = torch.optim.Adam(D.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999))
    opt_G = torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999))
    amp = dict(
        device_type="cuda", dtype=torch.bfloat16, enabled=cfg.amp_bf16 and device.startswith("cuda")
    )
    ones, loss_D, loss_G = (
        torch.ones(cfg.batch_size, device=device),
        torch.tensor(math.nan),
        torch.tensor(math.nan),
    )
    start = time.perf_counter()
    for _ in range(cfg.steps):
        x = x_tr[torch.randint(len(x_tr), (cfg.batch_size,))].to(device)
        z = (
            torch.rand(cfg.batch_size, cfg.nz, device=device) * 2 - 1
        )  # uniform noise, as in the paper
        with torch.autocast(**amp):  # D step: real -> 1, G(z) -> 0
            fake = G(z)
            logit_real, logit_fake = D(x).float(), D(fake.detach()).float()
        loss_D = F.binary_cross_entropy_with_logits(
            logit_real, ones
        ) + F.binary_cross_entropy_with_logits(logit_fake, 0 * ones)
        opt_D.zero_grad()
        loss_D.backward()
        opt_D.step()
        with torch.autocast(**amp):  # G step: non-saturating -log D(G(z))
            loss_G = F.binary_cross_entropy_with_logits(D(fake).float(), ones)
        opt_G.zero_grad()
        loss_G.backward()
        opt_G.step()
    seconds = time.perf_counter() - start
    value = classifier_score(judge, generate(G, cfg, cfg.n_eval, device))
    return {
        "metric": GATE[0],
        "value": value,
        "passed": value >= GATE[2],
        "real_score": classifier_score(judge, x_te),
        "judge_accuracy": judge_accuracy,
        "loss_D": loss_D.item(),
        "loss_G": loss_G.item(),
        "params": sum(p.numel() for p in model.parameters()),
        "seconds": seconds,
        "images_per_s": cfg.steps * cfg.batch_size / seconds,
    }


def main(argv=None) -> int:
    from runnable._cli import run_main

    return run_main(__doc__, PRESETS, train, argv, GATE)


if __name__ == "__main__":
    raise SystemExit(main())
