"""Per-example loss trajectories for BaDLoss, recorded in any PyTorch (DDP) training run.

BaDLoss (SPEC §4) needs every training example's cross-entropy after every epoch, computed in
evaluation mode on the un-augmented example and clamped at 100: an N × E float32 matrix
(`trajectories.npy`, row-major, row i = training row i). This module records it across all DDP
ranks and makes the run resumable:

    rec = Recorder(eval_dataset, out_dir, epochs)        # dataset yields (image, label, row_index)
    start = rec.resume(model, optimizer, scheduler)      # 0, or the epochs already finished
    for epoch in range(start, epochs):
        train_one_epoch(model, optimizer, scheduler, epoch)
        rec.end_epoch(model, optimizer, scheduler)       # record, checkpoint, write .npy
    rec.finish()
    leave()                                              # every rank: barrier, bounded teardown

Every rank must call `end_epoch` (it is a collective). Each rank evaluates its shard of the rows
(a strided shard by default: row positions rank, rank + P, …; nothing is repeated), pads its
results to the longest shard, and `all_gather`s (loss, row index) pairs; rank 0 places them by
row index. A sampler that repeats rows to even out shards (torch's DistributedSampler) is also
accepted: repeats are dropped (the first copy is kept), and a row that no rank evaluated is an
error, so nothing is lost or doubled.

After every epoch rank 0 writes, each atomically (temporary file, then os.replace):
  - `checkpoint.pt`: epochs done, the partial trajectories, model / optimizer / scheduler state
    and every rank's RNG states (torch, CUDA, numpy, random);
  - `trajectories.npy`: the N × (epochs done) matrix so far (N × E at the end), '<f4', C order;
  - `trajectories.meta.json`: rows, epochs done and planned, the training set's fingerprint
    (`detect` refuses a truth file made for another dataset), whether the run is complete;
  - optionally `counts.npy` (int32, N × epochs done): how many gathered results each row had.
A run killed between epochs continues from the last finished epoch when started again with the
same command and ends with the same files as an uninterrupted run (bit for bit on CPU with a
fixed seed and the same number of processes). The output directory must be visible to every
rank (every rank reads the checkpoint on resume).

Requires Python ≥ 3.11, PyTorch ≥ 1.13 and numpy.
"""

from __future__ import annotations

import json
import math
import os
import random
import sys
import threading
from typing import Any, Iterator, Sized

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Sampler

#: Trajectory losses are clamped here (SPEC §4), in nats.
LOSS_CLAMP = 100.0
#: Exit code of a run stopped on purpose by BADLOSS_STOP_AFTER_EPOCH (tests simulate a crash).
STOPPED_EXIT_CODE = 75
CHECKPOINT_VERSION = 1


#: Seconds `leave()` waits for the process group's teardown before exiting without it.
TEARDOWN_TIMEOUT_S = 60.0


class RecorderError(RuntimeError):
    """A recording that cannot be trusted: a lost row, a bad loss, a checkpoint of another run."""


def world() -> tuple[int, int]:
    """(rank, world size); (0, 1) without torch.distributed."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside DistributedDataParallel / DataParallel (or the model itself)."""
    return getattr(model, "module", model)


class ShardSampler(Sampler[int]):
    """Positions rank, rank + P, rank + 2P, … of a dataset: disjoint shards covering every
    position once; the last ranks' shards are one shorter when P does not divide N."""

    def __init__(self, data: Sized, rank: int, world_size: int):
        self.n = len(data)
        self.rank = rank
        self.world_size = world_size

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, self.n, self.world_size))

    def __len__(self) -> int:
        return len(range(self.rank, self.n, self.world_size))


def _atomic_write(path: str, write) -> None:
    """Calls write(file) on a temporary file next to `path`, then renames it over `path`."""
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save_npy(path: str, array: np.ndarray) -> None:
    """Writes a C-ordered little-endian .npy atomically."""
    _atomic_write(path, lambda f: np.save(f, np.ascontiguousarray(array), allow_pickle=False))


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class Recorder:
    """Records BaDLoss trajectories; see the module's doc string for the protocol.

    dataset: yields (image, label, row_index) — the *un-augmented* training rows, transformed as
        the model expects at evaluation time; row_index in 0..num_rows-1 (default len(dataset)).
    out_dir: where checkpoint.pt, trajectories.npy and trajectories.meta.json go.
    epochs: E, the planned number of epochs (the width of the matrix).
    sampler: "strided" (default, ShardSampler), "distributed" (torch's DistributedSampler, which
        repeats rows to even out shards) or a Sampler over dataset positions for this rank.
    fingerprint: the training set's SHA-256 ("fingerprint" in poison's truth.json; for CIFAR-10
        binary train_cifar.fingerprint computes it), written to the meta file.
    record_counts: also write counts.npy (results gathered per row and epoch; 1 = exactly once).
    device: where evaluation runs (default: the model's device).
    """

    def __init__(
        self,
        dataset: Dataset,
        out_dir: str,
        epochs: int,
        *,
        num_rows: int | None = None,
        batch_size: int = 512,
        num_workers: int = 0,
        sampler: str | Sampler[int] = "strided",
        fingerprint: str | None = None,
        record_counts: bool = False,
        device: torch.device | None = None,
    ):
        if epochs < 1:
            raise RecorderError(f"epochs {epochs} must be at least 1")
        self.dataset = dataset
        self.out_dir = out_dir
        self.epochs = epochs
        self.num_rows = len(dataset) if num_rows is None else num_rows  # type: ignore[arg-type]
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.sampler = sampler
        self.fingerprint = fingerprint
        self.record_counts = record_counts
        self.device = device
        self.rank, self.world_size = world()
        self.epoch = 0
        #: The `extra` dict of the checkpoint resumed from (e.g. a trainer's history).
        self.extra: dict[str, Any] = {}
        self.trajectories = np.zeros((self.num_rows, epochs), dtype=np.float32)
        # N × E int32 only when asked for (at 10 M rows × 100 epochs it would be another 4 GB)
        self.counts = np.zeros((self.num_rows, epochs) if record_counts else (0, 0), np.int32)
        if self.rank == 0:
            os.makedirs(out_dir, exist_ok=True)

    # --- paths -------------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> str:
        return os.path.join(self.out_dir, "checkpoint.pt")

    @property
    def trajectories_path(self) -> str:
        return os.path.join(self.out_dir, "trajectories.npy")

    # --- recording ---------------------------------------------------------------------------
    def _sampler(self) -> Sampler[int]:
        if self.sampler == "strided":
            return ShardSampler(self.dataset, self.rank, self.world_size)  # type: ignore[arg-type]
        if self.sampler == "distributed":
            from torch.utils.data.distributed import DistributedSampler

            return DistributedSampler(
                self.dataset, num_replicas=self.world_size, rank=self.rank, shuffle=False
            )
        if isinstance(self.sampler, str):
            raise RecorderError(f'sampler "{self.sampler}" is not "strided" or "distributed"')
        return self.sampler

    @torch.no_grad()
    def losses(self, model: torch.nn.Module) -> tuple[np.ndarray, np.ndarray]:
        """Evaluation-mode cross-entropy of every row (collective across ranks).

        Returns (losses, counts): float32 [N] clamped at LOSS_CLAMP, and int32 [N] — how many
        results each row had before repeats were dropped. Raises RecorderError when a row was
        not evaluated, a row index is out of range, or a loss is not finite.
        """
        # Not the DDP wrapper: its forward would broadcast buffers (a collective).
        net = unwrap(model)
        was_training = net.training
        net.eval()
        device = self.device or next(net.parameters()).device
        if self.world_size > 1:
            # DDP keeps parameters equal but not BatchNorm's running statistics: each rank updated
            # them with its own batches since DDP last broadcast them (at the start of a forward).
            # Evaluate rank 0's model everywhere — the one checkpointed — as DDP's next forward
            # would make them anyway.
            for b in net.buffers():
                dist.broadcast(b.data, src=0)
        loader = DataLoader(
            self.dataset,
            batch_size=self.batch_size,
            sampler=self._sampler(),
            num_workers=self.num_workers,
            shuffle=False,
        )
        local_loss: list[torch.Tensor] = []
        local_rows: list[torch.Tensor] = []
        for images, labels, rows in loader:
            logits = net(images.to(device, non_blocking=True))
            loss = F.cross_entropy(logits.float(), labels.to(device).long(), reduction="none")
            local_loss.append(loss.clamp(max=LOSS_CLAMP).cpu())
            local_rows.append(torch.as_tensor(rows).long().cpu())
        net.train(was_training)
        loss = torch.cat(local_loss) if local_loss else torch.zeros(0)
        rows = torch.cat(local_rows) if local_rows else torch.zeros(0, dtype=torch.long)
        if self.world_size > 1:
            loss, rows = self._gather(loss, rows, device)
        return self._place(loss.numpy(), rows.numpy())

    def _gather(
        self, loss: torch.Tensor, rows: torch.Tensor, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # NCCL gathers CUDA tensors only; gloo gathers CPU tensors.
        dev = device if dist.get_backend() == "nccl" else torch.device("cpu")
        n_local = torch.tensor([rows.numel()], dtype=torch.long, device=dev)
        sizes = [torch.zeros_like(n_local) for _ in range(self.world_size)]
        dist.all_gather(sizes, n_local)
        longest = int(max(s.item() for s in sizes))
        # Pad every shard to the longest: padded slots carry row −1 and are dropped below.
        pad_loss = torch.zeros(longest, dtype=torch.float32, device=dev)
        pad_rows = torch.full((longest,), -1, dtype=torch.long, device=dev)
        pad_loss[: loss.numel()] = loss.to(dev)
        pad_rows[: rows.numel()] = rows.to(dev)
        all_loss = [torch.empty_like(pad_loss) for _ in range(self.world_size)]
        all_rows = [torch.empty_like(pad_rows) for _ in range(self.world_size)]
        dist.all_gather(all_loss, pad_loss)
        dist.all_gather(all_rows, pad_rows)
        return torch.cat(all_loss).cpu(), torch.cat(all_rows).cpu()

    def _place(self, loss: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        real = rows >= 0
        loss, rows = loss[real], rows[real]
        n = self.num_rows
        if rows.size and (rows.max() >= n):
            raise RecorderError(
                f"row index {int(rows.max())} is outside 0..{n - 1}: the dataset must yield "
                "(image, label, row_index) with row_index < num_rows"
            )
        counts = np.bincount(rows, minlength=n).astype(np.int32)
        missing = np.flatnonzero(counts == 0)
        if missing.size:
            raise RecorderError(
                f"epoch {self.epoch + 1}: {missing.size} of {n} rows were not evaluated "
                f"(first: {missing[:5].tolist()}); the sampler must cover every row"
            )
        # Keep the first result of each row (a repeat from a padding sampler is the same row).
        _, first = np.unique(rows, return_index=True)
        out = np.empty(n, dtype=np.float32)
        out[rows[first]] = loss[first]
        bad = np.flatnonzero(~np.isfinite(out))
        if bad.size:
            raise RecorderError(
                f"epoch {self.epoch + 1}: the loss of row {int(bad[0])} is {out[bad[0]]} "
                f"({bad.size} rows not finite); training diverged — lower the learning rate"
            )
        return out, counts

    # --- the epoch protocol ------------------------------------------------------------------
    def resume(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer | None = None,
        scheduler: Any = None,
    ) -> int:
        """Restores the last checkpoint of out_dir, if any; returns the epochs already done."""
        if not os.path.exists(self.checkpoint_path):
            return 0
        ckpt = torch.load(self.checkpoint_path, map_location="cpu", weights_only=False)
        if ckpt.get("version") != CHECKPOINT_VERSION:
            raise RecorderError(f"{self.checkpoint_path}: unknown version {ckpt.get('version')}")
        shape = tuple(ckpt["trajectories"].shape)
        if shape != (self.num_rows, self.epochs):
            raise RecorderError(
                f"{self.checkpoint_path} is for {shape[0]} rows × {shape[1]} epochs, this run "
                f"has {self.num_rows} × {self.epochs}: use another --out directory"
            )
        if ckpt["world_size"] != self.world_size:
            raise RecorderError(
                f"{self.checkpoint_path} was written by {ckpt['world_size']} processes, this "
                f"run has {self.world_size}: resume with the same number of processes"
            )
        if self.fingerprint and ckpt.get("fingerprint") not in (None, self.fingerprint):
            raise RecorderError(
                f"{self.checkpoint_path} was recorded on another training set (fingerprint "
                f"{ckpt['fingerprint'][:16]}…, this one {self.fingerprint[:16]}…)"
            )
        unwrap(model).load_state_dict(ckpt["model"])
        if optimizer is not None and ckpt.get("optimizer") is not None:
            optimizer.load_state_dict(ckpt["optimizer"])
        if scheduler is not None and ckpt.get("scheduler") is not None:
            scheduler.load_state_dict(ckpt["scheduler"])
        _set_rng_state(ckpt["rng"][self.rank])
        self.epoch = int(ckpt["epoch"])
        self.trajectories = ckpt["trajectories"].numpy().copy()
        if self.record_counts:
            if ckpt["counts"].numel() == 0:
                raise RecorderError(
                    f"{self.checkpoint_path} has no counts (recorded without record_counts)"
                )
            self.counts = ckpt["counts"].numpy().copy()
        self.extra = ckpt.get("extra", {})
        return self.epoch

    def end_epoch(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer | None = None,
        scheduler: Any = None,
        extra: dict[str, Any] | None = None,
    ) -> np.ndarray:
        """Records this epoch's column and checkpoints (call on every rank after each epoch).

        Returns the column (float32 [N]). When the environment variable
        BADLOSS_STOP_AFTER_EPOCH equals the epochs now done, every rank exits with
        STOPPED_EXIT_CODE once the checkpoint is on disk (to test resuming).
        """
        if self.epoch >= self.epochs:
            raise RecorderError(f"all {self.epochs} epochs are already recorded")
        column, counts = self.losses(model)
        self.trajectories[:, self.epoch] = column
        if self.record_counts:
            self.counts[:, self.epoch] = counts
        self.epoch += 1
        rngs = [None] * self.world_size
        if self.world_size > 1:
            dist.all_gather_object(rngs, _rng_state())
        else:
            rngs = [_rng_state()]
        if self.rank == 0:
            ckpt = {
                "version": CHECKPOINT_VERSION,
                "epoch": self.epoch,
                "world_size": self.world_size,
                "fingerprint": self.fingerprint,
                "trajectories": torch.from_numpy(self.trajectories),  # shared, not copied
                "counts": torch.from_numpy(self.counts),
                "model": unwrap(model).state_dict(),
                "optimizer": optimizer.state_dict() if optimizer is not None else None,
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "rng": rngs,
                "extra": extra or {},
            }
            _atomic_write(self.checkpoint_path, lambda f: torch.save(ckpt, f))
            self._write_outputs()
        if self.world_size > 1:
            dist.barrier()
        stop = os.environ.get("BADLOSS_STOP_AFTER_EPOCH")
        if stop and int(stop) == self.epoch and self.epoch < self.epochs:
            print(
                f"badloss: stopping after epoch {self.epoch} (BADLOSS_STOP_AFTER_EPOCH)",
                file=sys.stderr,
            )
            leave(STOPPED_EXIT_CODE)
        return column

    def finish(self) -> None:
        """Checks that every epoch was recorded (the files are already written)."""
        if self.epoch != self.epochs:
            raise RecorderError(f"only {self.epoch} of {self.epochs} epochs were recorded")

    def _write_outputs(self) -> None:
        done = self.epoch
        save_npy(self.trajectories_path, self.trajectories[:, :done].astype("<f4"))
        if self.record_counts:
            save_npy(os.path.join(self.out_dir, "counts.npy"), self.counts[:, :done])
        meta = {
            "rows": self.num_rows,
            "epochs": done,
            "plannedEpochs": self.epochs,
            "complete": done == self.epochs,
            "fingerprint": self.fingerprint,
            "worldSize": self.world_size,
            "lossClamp": LOSS_CLAMP,
            "recordedIn": "evaluation mode, after every epoch (SPEC §4)",
        }
        text = json.dumps(meta, indent=2) + "\n"
        _atomic_write(
            os.path.join(self.out_dir, "trajectories.meta.json"),
            lambda f: f.write(text.encode()),
        )


def leave(code: int = 0, timeout_s: float | None = None) -> None:
    """Ends this process with `code` after every rank is here: barrier, then destroy the group.

    Call it on every rank once the outputs are written. The barrier runs here, under the process
    group's own timeout: a rank still writing (rank 0 saving a large model) is waited for. The
    teardown after it runs in a helper thread: destroy_process_group() can hang now and then even
    after a barrier (pytorch/pytorch#75097; seen once here in CI with gloo on 2 CPU processes,
    after the files were complete). If it has not finished within `timeout_s` (default
    TEARDOWN_TIMEOUT_S, or the environment's BADLOSS_TEARDOWN_TIMEOUT_S) the process says so and
    exits with `code` without waiting for it (os._exit): every rank has passed the barrier, so
    every collective is done and every file is on disk.
    """
    if not (dist.is_available() and dist.is_initialized()):
        sys.exit(code)
    if timeout_s is None:
        timeout_s = float(os.environ.get("BADLOSS_TEARDOWN_TIMEOUT_S", TEARDOWN_TIMEOUT_S))
    dist.barrier()  # leave together: a rank tearing down early can stall the others
    failed: list[BaseException] = []

    def teardown() -> None:
        try:
            dist.destroy_process_group()
        except BaseException as e:  # noqa: BLE001 — re-raised on the main thread below
            failed.append(e)

    done = threading.Thread(target=teardown, name="badloss-teardown", daemon=True)
    done.start()
    done.join(timeout_s)
    if failed:
        raise failed[0]
    if done.is_alive():
        print(
            f"badloss: the process group's teardown did not finish in {timeout_s:g} s; "
            "exiting without it (every rank passed the barrier; the outputs are complete)",
            file=sys.stderr,
        )
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(code)
    sys.exit(code)


def steps_cosine(total_steps: int):
    """Multiplier of a per-step cosine schedule to 0: ½(1 + cos(π·t/T)) (LambdaLR, SPEC §4)."""
    return lambda t: 0.5 * (1 + math.cos(math.pi * min(t, total_steps) / total_steps))
