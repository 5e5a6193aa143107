"""PyTorch reference throughput for `npm run bench` (CPU, every core).

The same networks as src/ml/resnet.ts: CIFAR stem (3x3 conv, stride 1) + BN + ReLU, basic blocks
(3x3 conv-BN-ReLU, 3x3 conv-BN, 1x1 conv-BN projection shortcut when the shape changes), global
average pooling, a fully connected layer; ResNet-8 = one block per stage, ResNet-20 = three;
widths 16/32/64 (width multiplier 1), no conv biases. AdamW (lr 1e-3, weight decay 1e-4), batch
64, 32x32x3 inputs, 10 classes. Warm-up steps first, then timed training steps, then a timed
evaluation-mode pass computing per-example cross-entropy (what recording a trajectory column does).
Each is timed in `--repeats` windows of `--steps` steps and the best window is reported: on a
shared machine the slower windows measure the neighbours, not PyTorch.

Prints one JSON object:
  {"torch": ..., "threads": ..., "batchSize": 64, "steps": ...,
   "trainImagesPerSecond": {"resnet8": ..., "resnet20": ...},
   "recordImagesPerSecond": {"resnet8": ..., "resnet20": ...}}
Usage: /usr/bin/python3 bench/pytorch_ref.py [--steps N] [--warmup N] [--repeats N]
"""

import argparse
import json
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(cout)
        self.sc = None
        if stride != 1 or cin != cout:
            self.sc = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        o = F.relu(self.b1(self.c1(x)))
        o = self.b2(self.c2(o))
        return F.relu(o + (self.sc(x) if self.sc is not None else x))


class ResNet(nn.Module):
    def __init__(self, blocks, widths=(16, 32, 64), num_classes=10):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU()
        )
        layers, cin = [], widths[0]
        for s, (w, n) in enumerate(zip(widths, blocks)):
            for b in range(n):
                layers.append(Block(cin, w, 2 if (b == 0 and s > 0) else 1))
                cin = w
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        return self.fc(F.adaptive_avg_pool2d(self.layers(self.stem(x)), 1).flatten(1))


MODELS = {"resnet8": (1, 1, 1), "resnet20": (3, 3, 3)}


def best_rate(fn, batch, steps, repeats):
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            fn()
        best = max(best, batch * steps / (time.perf_counter() - t0))
    return best


def measure(blocks, batch, steps, warmup, repeats):
    torch.manual_seed(1)
    model = ResNet(blocks)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    x = torch.rand(batch, 3, 32, 32)
    y = torch.randint(0, 10, (batch,))

    def step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    def record_batch():
        F.cross_entropy(model(x), y, reduction="none").tolist()

    model.train()
    for _ in range(warmup):
        step()
    train = best_rate(step, batch, steps, repeats)

    model.eval()
    with torch.no_grad():
        for _ in range(warmup):
            record_batch()
        record = best_rate(record_batch, batch, steps, repeats)
    return train, record


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    threads = os.cpu_count() or 1
    torch.set_num_threads(threads)
    out = {
        "torch": torch.__version__,
        "threads": threads,
        "batchSize": a.batch,
        "steps": a.steps,
        "repeats": a.repeats,
        "trainImagesPerSecond": {},
        "recordImagesPerSecond": {},
    }
    for name, blocks in MODELS.items():
        train, record = measure(blocks, a.batch, a.steps, a.warmup, a.repeats)
        out["trainImagesPerSecond"][name] = train
        out["recordImagesPerSecond"][name] = record
    print(json.dumps(out))


if __name__ == "__main__":
    main()
