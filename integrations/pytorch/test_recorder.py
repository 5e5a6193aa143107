"""Unit tests of badloss_recorder (run by test/unit/pytorch.test.ts: python3 -m unittest)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import unittest

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import badloss_recorder as br  # noqa: E402


class Rows(Dataset):
    """Row i: a 4-vector, label i % 3, row index i."""

    def __init__(self, n: int):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 4, generator=g)
        self.y = torch.arange(n) % 3

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        return self.x[i], self.y[i], i


class ShardSamplerTest(unittest.TestCase):
    def test_shards_are_disjoint_and_cover_every_row(self):
        for n in (1, 2, 7, 301):
            for p in (1, 2, 3, 8):
                seen = [i for r in range(p) for i in br.ShardSampler(range(n), r, p)]
                self.assertEqual(sorted(seen), list(range(n)), (n, p))
                lens = [len(br.ShardSampler(range(n), r, p)) for r in range(p)]
                self.assertLessEqual(max(lens) - min(lens), 1)


class PlaceTest(unittest.TestCase):
    def setUp(self):
        self.rec = br.Recorder(Rows(5), tempfile.mkdtemp(), 2)

    def test_padding_dropped_and_repeats_kept_once(self):
        loss = np.array([0.5, 1.5, 2.5, 3.5, 4.5, 9.0, 0.5], dtype=np.float32)
        rows = np.array([0, 1, 2, 3, 4, -1, 0])  # −1: gather padding; row 0 repeated
        col, counts = self.rec._place(loss, rows)
        np.testing.assert_array_equal(col, [0.5, 1.5, 2.5, 3.5, 4.5])
        np.testing.assert_array_equal(counts, [2, 1, 1, 1, 1])

    def test_missing_row_is_an_error(self):
        want = r"1 of 5 rows were not evaluated \(first: \[3\]\)"
        with self.assertRaisesRegex(br.RecorderError, want):
            self.rec._place(np.ones(4, np.float32), np.array([0, 1, 2, 4]))

    def test_out_of_range_row_is_an_error(self):
        with self.assertRaisesRegex(br.RecorderError, "row index 5 is outside 0..4"):
            self.rec._place(np.ones(6, np.float32), np.arange(6))

    def test_nan_loss_is_an_error(self):
        loss = np.array([1, np.nan, 1, 1, 1], dtype=np.float32)
        with self.assertRaisesRegex(br.RecorderError, "loss of row 1 is nan"):
            self.rec._place(loss, np.arange(5))


class SingleProcessTest(unittest.TestCase):
    def test_records_clamped_eval_losses_and_resumes(self):
        torch.manual_seed(0)
        data = Rows(10)
        out = tempfile.mkdtemp()
        model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        rec = br.Recorder(data, out, 3, batch_size=4, fingerprint="ab" * 32, record_counts=True)
        self.assertEqual(rec.resume(model, opt), 0)
        col = rec.end_epoch(model, opt)
        self.assertTrue(model.training)  # back in the mode it was in
        with torch.no_grad():
            model.eval()
            want = F.cross_entropy(model(data.x), data.y, reduction="none").clamp(max=100)
        np.testing.assert_allclose(col, want.numpy(), rtol=0, atol=1e-6)
        t = np.load(os.path.join(out, "trajectories.npy"))
        self.assertEqual(t.shape, (10, 1))
        self.assertEqual(t.dtype, np.dtype("<f4"))
        with open(os.path.join(out, "trajectories.meta.json")) as f:
            meta = json.load(f)
        self.assertEqual((meta["rows"], meta["epochs"], meta["complete"]), (10, 1, False))
        # change the model, then resume: the checkpointed weights and column come back
        with torch.no_grad():
            model[0].weight.add_(1)
        rec2 = br.Recorder(data, out, 3, batch_size=4)
        self.assertEqual(rec2.resume(model, opt), 1)
        np.testing.assert_array_equal(rec2.trajectories[:, 0], col)
        np.testing.assert_allclose(rec2.losses(model)[0], col, atol=1e-6)
        with self.assertRaisesRegex(br.RecorderError, r"is for 10 rows × 3 epochs"):
            br.Recorder(data, out, 4).resume(model)
        with self.assertRaisesRegex(br.RecorderError, "only 1 of 3 epochs"):
            rec2.finish()

    def test_losses_clamp_at_100(self):
        data = Rows(3)
        model = torch.nn.Linear(4, 3)
        with torch.no_grad():
            model.weight.zero_()
            model.bias.copy_(torch.tensor([0.0, 500.0, -500.0]))
        col, _ = br.Recorder(data, tempfile.mkdtemp(), 1).losses(model)
        # rows 0 and 2 have labels 0 and 2: losses 500 and 1000 nats, clamped; row 1 ≈ 0
        np.testing.assert_allclose(col, [100, 0, 100], atol=1e-6)


class LeaveTest(unittest.TestCase):
    """leave() in a one-process gloo group, in a child process (it ends the process)."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp()

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def leave(self, body: str) -> subprocess.CompletedProcess[str]:
        code = textwrap.dedent(
            f"""
            import sys, tempfile, time
            import torch.distributed as dist
            sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})
            import badloss_recorder as br
            store = tempfile.mktemp(dir={self.tmp!r})
            dist.init_process_group("gloo", init_method="file://" + store, rank=0, world_size=1)
            """
        )
        return subprocess.run(
            [sys.executable, "-c", code + textwrap.dedent(body)],
            capture_output=True,
            text=True,
            timeout=60,
        )

    def test_exits_with_the_code_after_the_teardown(self):
        r = self.leave("br.leave(7)\n")
        self.assertEqual(r.returncode, 7, r.stderr)
        self.assertNotIn("teardown did not finish", r.stderr)

    def test_a_hung_teardown_still_ends_the_process(self):
        r = self.leave(
            """
            dist.destroy_process_group = lambda: time.sleep(3600)
            br.leave(5, timeout_s=0.5)
            """
        )
        self.assertEqual(r.returncode, 5, r.stderr)
        self.assertIn("teardown did not finish in 0.5 s", r.stderr)

    def test_the_barrier_is_waited_for_and_the_environment_sets_the_limit(self):
        # a peer still writing: the barrier outlasts the teardown's limit and is not cut short
        r = self.leave(
            """
            import os
            os.environ["BADLOSS_TEARDOWN_TIMEOUT_S"] = "0.3"
            real = dist.barrier
            dist.barrier = lambda: (time.sleep(1.0), real())
            br.leave(4)
            """
        )
        self.assertEqual(r.returncode, 4, r.stderr)
        self.assertNotIn("teardown did not finish", r.stderr)
        r = self.leave(
            """
            import os
            os.environ["BADLOSS_TEARDOWN_TIMEOUT_S"] = "0.3"
            dist.destroy_process_group = lambda: time.sleep(3600)
            br.leave(4)
            """
        )
        self.assertEqual(r.returncode, 4, r.stderr)
        self.assertIn("teardown did not finish in 0.3 s", r.stderr)

    def test_a_failed_barrier_is_raised_not_hidden(self):
        r = self.leave(
            """
            def broken():
                raise RuntimeError("peer went away")
            dist.barrier = broken
            br.leave(0)
            """
        )
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("peer went away", r.stderr)


if __name__ == "__main__":
    unittest.main()
