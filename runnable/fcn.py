"""Fully Convolutional Networks for Semantic Segmentation (FCN-8s).

Paper: Fully Convolutional Networks for Semantic Segmentation (Long et al., 2015) https://arxiv.org/abs/1411.4038
A classification net becomes fully convolutional (fc6/fc7 as convolutions), so it outputs a coarse
score map for any input size. Learned upsampling (ConvTranspose initialised to bilinear) brings it
back to pixels, and skip connections fuse the coarse semantic scores with finer pool4/pool3 scores
(FCN-8s, sec. 4.2). Gate: mean IU >= 0.6 on held-out generated shapes (tiny reaches ~0.7).
Run: python -m runnable.fcn --preset tiny
"""
import argparse, ast, json, math, time  # noqa: E401
from dataclasses import dataclass, fields, replace

import torch
import torch.nn.functional as F
from torch import nn

GATE = ("mean-iu", ">=", 0.6)


@dataclass
class Config:
    stages: tuple = ((1, 16), (1, 32), (1, 48), (1, 64), (1, 64))  # (convs, width) per block, then a 2x2 pool
    fc_width: int = 96          # fc6/fc7 width (4096 in the paper)
    fc6_kernel: int = 3         # fc6 as a k x k convolution (7 in VGG-16)
    n_classes: int = 4          # background + rectangle, disc, triangle (21 for PASCAL VOC)
    image_size: int = 32
    n_train: int = 1500
    n_test: int = 300
    epochs: int = 8
    batch_size: int = 32
    lr: float = 3e-3
    dropout: float = 0.0        # 0.5 after fc6/fc7 in the paper
    seed: int = 0
    amp_bf16: bool = False


PRESETS = {
    "tiny": Config(),
    "paper": Config(stages=((2, 64), (2, 128), (3, 256), (3, 512), (3, 512)), fc_width=4096, fc6_kernel=7,
                    n_classes=21, image_size=224, dropout=0.5, epochs=12),
    "gpu": Config(stages=((2, 32), (2, 64), (2, 128), (2, 256), (2, 256)), fc_width=512, image_size=64,
                  n_train=20000, n_test=1000, epochs=30, batch_size=64, amp_bf16=True),
}


def bilinear_kernel(channels: int, k: int) -> torch.Tensor:
    """Sec. 3.3: deconvolution filters initialised to bilinear interpolation, one per class channel."""
    factor = (k + 1) // 2
    centre = factor - 1 if k % 2 == 1 else factor - 0.5
    r = torch.arange(k, dtype=torch.float32)
    f1 = 1 - (r - centre).abs() / factor                          # (k,)
    w = torch.zeros(channels, channels, k, k)
    w[range(channels), range(channels)] = f1[:, None] * f1[None, :]
    return w


class FCN8s(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        c_in, self.blocks = 3, nn.ModuleList()
        for n_conv, width in cfg.stages:                           # VGG conv blocks, 3x3 convs + ReLU, then pool
            layers = []
            for _ in range(n_conv):
                layers += [nn.Conv2d(c_in, width, 3, padding=1), nn.ReLU(inplace=True)]
                c_in = width
            self.blocks.append(nn.Sequential(*layers, nn.MaxPool2d(2)))
        k, C = cfg.fc6_kernel, cfg.n_classes
        self.fc = nn.Sequential(                                   # sec. 3.1: fc6, fc7 "convolutionalized"
            nn.Conv2d(c_in, cfg.fc_width, k, padding=k // 2), nn.ReLU(inplace=True), nn.Dropout2d(cfg.dropout),
            nn.Conv2d(cfg.fc_width, cfg.fc_width, 1), nn.ReLU(inplace=True), nn.Dropout2d(cfg.dropout))
        self.score_fr = nn.Conv2d(cfg.fc_width, C, 1)
        self.score_pool4 = nn.Conv2d(cfg.stages[-2][1], C, 1)     # sec. 4.2: 1x1 class predictors on skips
        self.score_pool3 = nn.Conv2d(cfg.stages[-3][1], C, 1)
        for s in (self.score_pool4, self.score_pool3):             # zero-init so training starts from FCN-32s
            nn.init.zeros_(s.weight), nn.init.zeros_(s.bias)
        up = 2 ** (len(cfg.stages) - 2)                            # 8 for five pools
        self.upscore2 = nn.ConvTranspose2d(C, C, 4, stride=2, padding=1, bias=False)
        self.upscore_pool4 = nn.ConvTranspose2d(C, C, 4, stride=2, padding=1, bias=False)
        self.upscore8 = nn.ConvTranspose2d(C, C, 2 * up, stride=up, padding=up // 2, bias=False)
        for d in (self.upscore2, self.upscore_pool4, self.upscore8):
            if d.weight.device.type != "meta":
                with torch.no_grad():
                    d.weight.copy_(bilinear_kernel(C, d.kernel_size[0]))

    def forward(self, x):                                          # (B, 3, H, W)
        feats = []
        for block in self.blocks:
            x = block(x)
            feats.append(x)
        pool3, pool4 = feats[-3], feats[-2]                        # (B, ., H/8, W/8), (B, ., H/16, W/16)
        score = self.score_fr(self.fc(x))                          # (B, C, H/32, W/32)
        score = self.upscore2(score) + self.score_pool4(pool4)     # fuse at stride 16 (FCN-16s)
        score = self.upscore_pool4(score) + self.score_pool3(pool3)  # fuse at stride 8 (FCN-8s)
        return self.upscore8(score)                                # (B, C, H, W)


def build_model(cfg: Config) -> nn.Module:
    return FCN8s(cfg)


def make_shapes(cfg: Config, n: int, seed: int):
    """Noisy images with 1-3 rectangles / discs / triangles; per-pixel labels 0 = background, 1..3 = shape."""
    g, S = torch.Generator().manual_seed(seed), cfg.image_size
    palette = torch.tensor([[0.9, 0.3, 0.2], [0.2, 0.8, 0.3], [0.3, 0.4, 0.95]])
    yy, xx = torch.meshgrid(torch.arange(S) + 0.5, torch.arange(S) + 0.5, indexing="ij")
    images = 0.45 + 0.1 * torch.rand(n, 3, 1, 1, generator=g) + 0.12 * torch.randn(n, 3, S, S, generator=g)
    labels = torch.zeros(n, S, S, dtype=torch.long)
    for i in range(n):
        for _ in range(int(torch.randint(1, 4, (1,), generator=g))):
            c = int(torch.randint(3, (1,), generator=g))
            w, h = (S * (0.2 + 0.3 * torch.rand(2, generator=g))).tolist()
            x1, y1 = ((S - torch.tensor([w, h])) * torch.rand(2, generator=g)).tolist()
            u, v = (xx - x1) / w, (yy - y1) / h                    # box-relative coordinates in [0, 1]
            inside = (u >= 0) & (u <= 1) & (v >= 0) & (v <= 1) & (   # rectangle, disc, triangle (apex up)
                [u >= 0, (2 * u - 1) ** 2 + (2 * v - 1) ** 2 <= 1, (2 * u - 1).abs() <= v][c])
            colour = palette[c] + 0.1 * torch.randn(3, generator=g)
            images[i][:, inside] = colour[:, None] + 0.05 * torch.randn(3, int(inside.sum()), generator=g)
            labels[i][inside] = c + 1
    return images, labels


def mean_iu(confusion: torch.Tensor) -> float:
    """Sec. 5: mean IU = (1/n_cl) sum_i n_ii / (t_i + sum_j n_ji - n_ii)."""
    n_ii = confusion.diag().double()
    union = confusion.sum(0).double() + confusion.sum(1).double() - n_ii
    return (n_ii[union > 0] / union[union > 0]).mean().item()


def train(cfg: Config, device: str = "cpu") -> dict:
    torch.manual_seed(cfg.seed)
    x, y = make_shapes(cfg, cfg.n_train, cfg.seed + 1)
    xt, yt = make_shapes(cfg, cfg.n_test, cfg.seed + 2)            # held-out split
    model = build_model(cfg).to(device, memory_format=torch.channels_last)  # NHWC: CPU conv + pool faster
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    steps = cfg.epochs * math.ceil(cfg.n_train / cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=steps, pct_start=0.15)
    amp = dict(device_type="cuda", dtype=torch.bfloat16, enabled=cfg.amp_bf16 and device.startswith("cuda"))
    start = time.perf_counter()
    for _ in range(cfg.epochs):
        model.train()
        for idx in torch.randperm(cfg.n_train).split(cfg.batch_size):
            with torch.autocast(**amp):
                logits = model(x[idx].to(device, memory_format=torch.channels_last))  # (B, C, H, W)
            loss = F.cross_entropy(logits.float(), y[idx].to(device))  # per-pixel multinomial logistic loss
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    C, confusion = cfg.n_classes, torch.zeros(cfg.n_classes, cfg.n_classes, dtype=torch.long)
    with torch.no_grad(), torch.autocast(**amp):
        for idx in torch.arange(cfg.n_test).split(256):
            pred = model(xt[idx].to(device)).argmax(1).cpu()
            confusion += torch.bincount(yt[idx].flatten() * C + pred.flatten(), minlength=C * C).view(C, C)
    value = mean_iu(confusion)
    pixel_acc = (confusion.diag().sum() / confusion.sum()).item()
    return {"metric": GATE[0], "value": value, "passed": value >= GATE[2], "pixel_accuracy": pixel_acc,
            "params": sum(p.numel() for p in model.parameters()), "seconds": time.perf_counter() - start}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="tiny", choices=PRESETS)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", action="store_true")
    args, rest = ap.parse_known_args(argv)
    cfg = PRESETS[args.preset]
    for item in rest:  # --field=value overrides; tuples and booleans as Python literals
        key, _, value = item.removeprefix("--").partition("=")
        old = getattr(cfg, key) if key in {f.name for f in fields(Config)} else ap.error(f"unknown option {item}")
        cfg = replace(cfg, **{key: ast.literal_eval(value) if isinstance(old, (tuple, bool)) else type(old)(value)})
    result = train(cfg, args.device)
    print(json.dumps(result) if args.json else f"{GATE[0]} = {result['value']:.4f} "
          f"({'passed' if result['passed'] else 'FAILED'} the gate {GATE[1]} {GATE[2]})")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
