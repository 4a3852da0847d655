"""Batch Normalization: normalise each activation over the mini-batch, then scale and shift.

Paper: Batch Normalization: Accelerating Deep Network Training by Reducing Internal Covariate Shift (Ioffe et al., 2015) https://arxiv.org/abs/1502.03167
Each activation is standardised with its mini-batch mean and variance and then given back a
learned scale gamma and shift beta (Alg. 1), so a layer's input distribution stops drifting as
the layers below change. At inference the batch statistics are replaced by population estimates
(Alg. 2). The paper's MNIST test (§4.1): 3 sigmoid layers of 100 units, with and without BN.
Gate: same net, same init, same large SGD step size and step budget on digits: held-out accuracy
with BN minus without BN >= 0.5 (the "higher learning rates, fewer steps" claim at toy scale).
Run: python -m runnable.batchnorm --preset tiny
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

GATE = ("bn-minus-plain", ">=", 0.5)


@dataclass
class Config:
    in_features: int = 64  # 8x8 digits (paper: 28x28 MNIST)
    hidden: int = 100  # §4.1: 3 fully connected hidden layers of 100 sigmoid units
    layers: int = 3
    num_classes: int = 10
    eps: float = 1e-5  # Alg. 1: epsilon added to the mini-batch variance
    momentum: float = 0.1  # running-average rate for the population statistics (Alg. 2)
    init_std: float = 1.0  # §4.1: weights from a Gaussian (std 1 here, fan-in scaled below)
    lr: float = 2.0  # plain SGD, large on purpose
    steps: int = 150
    batch_size: int = 60  # §4.1: 60 examples per mini-batch
    test_size: int = 500
    seed: int = 0


PRESETS = {
    "tiny": Config(),
    "paper": Config(in_features=784, steps=50000, lr=0.5),  # §4.1: 50,000 steps on MNIST
    "gpu": Config(hidden=2048, layers=6, steps=20000, batch_size=512, lr=1.0),
}


class BatchNorm(nn.Module):
    """Alg. 1 (training) and Alg. 2 (inference) for (B, C) or (B, C, H, W) inputs; for conv maps
    the statistics are shared over all locations of a channel (§3.2)."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.gamma = nn.Parameter(torch.ones(num_features))  # scale, learned
        self.beta = nn.Parameter(torch.zeros(num_features))  # shift, learned
        self.register_buffer("running_mean", torch.zeros(num_features))  # E[x] estimate
        self.register_buffer("running_var", torch.ones(num_features))  # Var[x] estimate

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C) or (B, C, H, W)
        x = x.float()  # statistics in fp32, also under autocast
        dims = [0] + list(range(2, x.dim()))  # all but the channel dim
        shape = [1, -1] + [1] * (x.dim() - 2)
        if self.training:
            mu_B = x.mean(dims)  # Alg. 1: mini-batch mean
            sigma2_B = x.var(dims, unbiased=False)  # Alg. 1: mini-batch variance
            m = x.numel() // x.shape[1]  # values per channel
            with torch.no_grad():  # Alg. 2 step 10: Var[x] = m/(m-1) E[sigma2_B]
                self.running_mean.lerp_(mu_B, self.momentum)  # moving average in place of
                self.running_var.lerp_(
                    sigma2_B * m / (m - 1), self.momentum
                )  # the average over batches
        else:
            mu_B, sigma2_B = self.running_mean, self.running_var  # Alg. 2 step 11: fixed statistics
        x_hat = (x - mu_B.view(shape)) / torch.sqrt(sigma2_B.view(shape) + self.eps)  # normalise
        return self.gamma.view(shape) * x_hat + self.beta.view(shape)  # y = gamma x_hat + beta


class MLP(nn.Module):
    """§4.1: x -> [W u (+ BN)] -> sigmoid, three times, then a linear layer to the classes."""

    def __init__(self, cfg: Config, use_bn: bool = True):
        super().__init__()
        widths = [cfg.in_features] + [cfg.hidden] * cfg.layers
        blocks = []
        for n_in, n_out in zip(widths[:-1], widths[1:]):
            # §3.2: with BN the bias b is redundant (beta takes its role), so W u only
            blocks += [nn.Linear(n_in, n_out, bias=not use_bn)]
            blocks += [BatchNorm(n_out, cfg.eps, cfg.momentum)] if use_bn else []
            blocks += [nn.Sigmoid()]
        blocks.append(nn.Linear(widths[-1], cfg.num_classes))
        self.net = nn.Sequential(*blocks)
        for m in self.net:
            if isinstance(m, nn.Linear):  # Gaussian init, identical for both nets
                nn.init.normal_(m.weight, std=cfg.init_std / m.in_features**0.5)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, u):  # (B, in_features)
        return self.net(u)  # (B, classes)


def build_model(cfg: Config) -> nn.Module:
    return MLP(cfg)


def load_data(cfg: Config):
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.data, dtype=torch.float32) / 16.0  # (N, 64) in [0, 1], not centred
    y = torch.tensor(d.target)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    te, tr = perm[: cfg.test_size], perm[cfg.test_size :]
    return x[tr], y[tr], x[te], y[te]


def fit(cfg: Config, use_bn: bool, data, device: str) -> tuple[float, float]:
    x_tr, y_tr, x_te, y_te = (t.to(device) for t in data)
    torch.manual_seed(cfg.seed)
    model = MLP(cfg, use_bn).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr)
    g = torch.Generator().manual_seed(cfg.seed)
    model.train()
    for _step in range(cfg.steps):
        idx = torch.randint(0, len(y_tr), (cfg.batch_size,), generator=g).to(device)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.startswith("cuda")):
            logits = model(x_tr[idx])
        loss = F.cross_entropy(logits.float(), y_tr[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()  # BN now uses Alg. 2's statistics
    with torch.no_grad():
        return (model(x_te).argmax(1) == y_te).float().mean().item(), loss.item()


def train(cfg: Config, device: str = "cpu") -> dict:
    t0 = time.time()
    data = load_data(cfg)
    acc_bn, loss_bn = fit(cfg, True, data, device)
    acc_plain, loss_plain = fit(cfg, False, data, device)
    gap = acc_bn - acc_plain
    seconds = time.time() - t0
    with torch.device("meta"):
        params = sum(p.numel() for p in build_model(cfg).parameters())
    return {
        "metric": GATE[0],
        "value": gap,
        "passed": gap >= GATE[2],
        "params": params,
        "seconds": round(seconds, 2),
        "bn_accuracy": acc_bn,
        "plain_accuracy": acc_plain,
        "bn_final_loss": loss_bn,
        "plain_final_loss": loss_plain,
        "images_per_s": 2 * cfg.steps * cfg.batch_size / seconds,
    }


def main(argv=None) -> int:
    from runnable._cli import run_main

    return run_main(__doc__, PRESETS, train, argv, GATE)


if __name__ == "__main__":
    raise SystemExit(main())
