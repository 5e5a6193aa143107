"""Train a CIFAR-stem ResNet on a BaDLoss Lab training set and record its loss trajectories.

    npm run cli -- poison cifar-10-binary.tar.gz --attacks patch,blend-r --probes 250 \\
        --out train.bin --truth truth.json
    python3 -m torch.distributed.run --nproc_per_node 4 integrations/pytorch/train_cifar.py \\
        train.bin --epochs 100 --out run/
    npm run cli -- report --trajectories run/trajectories.npy --truth truth.json \\
        --dataset train.bin --out report.html

Reads CIFAR-10 binary records (label byte + planar RGB), rows in training order. Runs as a single
process or under torchrun (gloo on CPU, NCCL on GPUs). The recipe matches BaDLoss Lab's own
trainer (src/ml/train.ts, SPEC §4) so trajectories are comparable:
  - ResNet-8 / 20 (basic blocks, widths 16/32/64) or ResNet-18 (64/128/256/512): 3×3 stride-1
    stem, no max-pool, 1×1 projection shortcuts with BatchNorm where the shape changes, global
    average pooling, a linear layer; `--width w` scales every width to max(4, round(c·w));
  - "same" padding as TensorFlow defines it (a stride-2 3×3 convolution on an even input pads one
    pixel at the bottom/right only), as in our tfjs model;
  - He-normal convolutions (fan-in), linear weights U(±1/√fan_in), zero bias; BatchNorm momentum
    0.1, eps 1e-5;
  - AdamW (lr 1e-3, decoupled weight decay 1e-4 on every parameter, β = 0.9/0.999, ε = 1e-8),
    learning rate cosine-annealed to 0 per optimizer step over the whole run; no augmentation;
  - inputs scaled to [0, 1] and normalized per channel with the training set's mean and
    (population) standard deviation.
`--batch` is the global batch (split evenly over the processes). Outputs in --out: trajectories.npy
(N × E float32), trajectories.meta.json, checkpoint.pt (resume by running the same command again)
and model.pt (the final weights, normalization and architecture).
`--check-rows 3,17` instead prints the evaluation-mode loss of those rows under <out>/model.pt.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import sys

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from badloss_recorder import (  # noqa: E402
    LOSS_CLAMP,
    Recorder,
    _atomic_write,
    leave,
    steps_cosine,
    world,
)

RECORD = 3073  # 1 label byte + 32·32·3 planar pixels
ARCHS = {
    "resnet8": ([16, 32, 64], [1, 1, 1]),
    "resnet20": ([16, 32, 64], [3, 3, 3]),
    "resnet18": ([64, 128, 256, 512], [2, 2, 2, 2]),
}


def read_cifar10_bin(path: str) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 N×3×32×32, labels uint8 N) from CIFAR-10 binary records."""
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % RECORD:
        raise SystemExit(
            f"{path}: {raw.size} bytes is not a whole number of {RECORD}-byte CIFAR-10 records"
        )
    rec = raw.reshape(-1, RECORD)
    return rec[:, 1:].reshape(-1, 3, 32, 32).copy(), rec[:, 0].copy()


def fingerprint(images: np.ndarray, labels: np.ndarray) -> str:
    """SHA-256 of the labels then the NHWC pixels: BaDLoss Lab's splitFingerprint."""
    h = hashlib.sha256(labels.astype(np.uint8).tobytes())
    h.update(np.ascontiguousarray(images.transpose(0, 2, 3, 1)).tobytes())
    return h.hexdigest()


def channel_stats(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and population std in [0, 1] units (std at least 1e-3)."""
    x = images.astype(np.float64) / 255
    mean = x.mean(axis=(0, 2, 3))
    var = (x * x).mean(axis=(0, 2, 3)) - mean**2
    return mean.astype(np.float32), np.sqrt(np.maximum(var, 1e-6)).astype(np.float32)


class CifarRows(Dataset):
    """Yields (normalized float32 3×32×32 image, label, row index): un-augmented training rows."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, mean, std):
        self.images = torch.from_numpy(images)
        self.labels = torch.from_numpy(labels.astype(np.int64))
        self.mean = torch.as_tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.as_tensor(std, dtype=torch.float32).view(3, 1, 1)

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int):
        x = (self.images[i].float() / 255 - self.mean) / self.std
        return x, self.labels[i], i


class SameConv(nn.Conv2d):
    """A bias-free convolution with TensorFlow's "same" padding (asymmetric when needed)."""

    def __init__(self, cin: int, cout: int, k: int, stride: int):
        super().__init__(cin, cout, k, stride=stride, padding=0, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size in (x.shape[-1], x.shape[-2]):  # F.pad wants (left, right, top, bottom)
            s, k = self.stride[0], self.kernel_size[0]
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads) if any(pads) else x)


class ConvBn(nn.Sequential):
    def __init__(self, cin: int, cout: int, k: int, stride: int):
        bn = nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1)
        super().__init__(SameConv(cin, cout, k, stride), bn)


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.c1 = ConvBn(cin, cout, 3, stride)
        self.c2 = ConvBn(cout, cout, 3, 1)
        self.sc = ConvBn(cin, cout, 1, stride) if stride != 1 or cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.c2(F.relu(self.c1(x)))
        return F.relu(out + (self.sc(x) if self.sc is not None else x))


class ResNet(nn.Module):
    """CIFAR-stem ResNet with basic blocks: NCHW float32 [B, 3, 32, 32] → logits [B, classes]."""

    def __init__(self, name: str, width: float, num_classes: int):
        super().__init__()
        if name not in ARCHS:
            raise SystemExit(f"--model {name} is not one of {', '.join(ARCHS)}")
        widths, blocks = ARCHS[name]
        w = lambda c: max(4, round(c * width))  # noqa: E731
        cin = w(widths[0])
        self.stem = ConvBn(3, cin, 3, 1)
        layers = []
        for s, (c, n) in enumerate(zip(widths, blocks)):
            for b in range(n):
                layers.append(BasicBlock(cin, w(c), 2 if b == 0 and s > 0 else 1))
                cin = w(c)
        self.blocks = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
        bound = 1 / math.sqrt(cin)
        nn.init.uniform_(self.fc.weight, -bound, bound)
        nn.init.zeros_(self.fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(F.relu(self.stem(x)))
        return self.fc(h.mean(dim=(2, 3)))


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("train_bin", help="CIFAR-10 binary training set (npm run cli -- poison --out)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--model", default="resnet20", choices=sorted(ARCHS))
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--batch", type=int, default=128, help="global batch size")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--num-classes", type=int, default=None, help="default: max(10, largest label + 1)"
    )
    p.add_argument("--eval-batch", type=int, default=512)
    p.add_argument("--workers", type=int, default=0, help="DataLoader workers per process")
    p.add_argument("--eval-sampler", default="strided", choices=["strided", "distributed"])
    p.add_argument("--record-counts", action="store_true", help="also write counts.npy")
    p.add_argument("--check-rows", default=None, help="print losses of these rows under model.pt")
    a = p.parse_args(argv)
    if a.epochs < 1 or a.batch < 1 or not (0 < a.width <= 8):
        p.error("--epochs and --batch must be ≥ 1 and --width in (0, 8]")
    return a


def check_rows(args: argparse.Namespace) -> None:
    """Evaluation-mode loss of single rows under the saved final model, one forward pass each."""
    saved = torch.load(os.path.join(args.out, "model.pt"), map_location="cpu", weights_only=False)
    images, labels = read_cifar10_bin(args.train_bin)
    cfg = saved["config"]
    model = ResNet(cfg["model"], cfg["width"], cfg["num_classes"])
    model.load_state_dict(saved["model"])
    model.eval()
    data = CifarRows(images, labels, saved["mean"], saved["std"])
    out = {}
    with torch.no_grad():
        for r in (int(s) for s in args.check_rows.split(",")):
            x, y, _ = data[r]
            loss = F.cross_entropy(model(x[None]), y[None].long())
            out[r] = min(float(loss), LOSS_CLAMP)
    print(json.dumps(out))


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    if args.check_rows:
        check_rows(args)
        return
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    cuda = torch.cuda.is_available()
    if distributed:
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    rank, size = world()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device("cuda", local) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    if args.batch % size:
        raise SystemExit(f"--batch {args.batch} is not divisible by the {size} processes")
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    random.seed(args.seed)

    images, labels = read_cifar10_bin(args.train_bin)
    num_classes = args.num_classes or max(10, int(labels.max()) + 1)
    mean, std = channel_stats(images)
    fp = fingerprint(images, labels)
    data = CifarRows(images, labels, mean, std)
    model = ResNet(args.model, args.width, num_classes).to(device)
    net: nn.Module = model
    if distributed:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[local] if cuda else None)
    # Also single-process: a seeded per-epoch permutation (set_epoch), the same on resume.
    sampler = DistributedSampler(data, num_replicas=size, rank=rank, shuffle=True, seed=args.seed)
    loader = DataLoader(
        data, batch_size=args.batch // size, sampler=sampler, num_workers=args.workers
    )
    opt = torch.optim.AdamW(
        model.parameters(), lr=args.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=args.weight_decay
    )
    sched = torch.optim.lr_scheduler.LambdaLR(opt, steps_cosine(args.epochs * len(loader)))
    rec = Recorder(
        data,
        args.out,
        args.epochs,
        batch_size=args.eval_batch,
        num_workers=args.workers,
        sampler=args.eval_sampler,
        fingerprint=fp,
        record_counts=args.record_counts,
        device=device,
    )
    start = rec.resume(net, opt, sched)
    history = list(rec.extra.get("history", []))
    if rank == 0:
        print(
            f"{len(data)} rows, {num_classes} classes, {args.model} ×{args.width}, "
            f"{size} process(es), epochs {start + 1}–{args.epochs}, fingerprint {fp[:16]}",
            file=sys.stderr,
        )
    for epoch in range(start, args.epochs):
        sampler.set_epoch(epoch)
        net.train()
        total = torch.zeros(2, dtype=torch.float64, device=device)
        for x, y, _ in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            loss = F.cross_entropy(net(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total[0] += loss.detach().double() * len(y)  # no host sync per step
            total[1] += len(y)
        if distributed:
            dist.all_reduce(total)
        history.append({"epoch": epoch, "loss": float(total[0] / total[1])})
        column = rec.end_epoch(net, opt, sched, extra={"history": history})
        if rank == 0:
            print(
                f"epoch {epoch + 1}/{args.epochs}: training loss {history[-1]['loss']:.4f}, "
                f"recorded mean loss {column.mean():.4f}",
                file=sys.stderr,
            )
    rec.finish()
    if rank == 0:
        final = {
            "model": model.state_dict(),
            "config": {"model": args.model, "width": args.width, "num_classes": num_classes},
            "mean": mean,
            "std": std,
            "fingerprint": fp,
        }
        _atomic_write(os.path.join(args.out, "model.pt"), lambda f: torch.save(final, f))
        print(f"trajectories → {rec.trajectories_path}", file=sys.stderr)
    leave()  # every rank together; a hung teardown cannot keep the run from ending


if __name__ == "__main__":
    main(sys.argv[1:])
