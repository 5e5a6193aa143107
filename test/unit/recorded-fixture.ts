import { splitFingerprint } from '../../src/core/dataset.ts';
import { generateDemoDataset } from '../../src/core/demo.ts';
import { prepareExperiment, preset, type RunConfig } from '../../src/core/experiment.ts';
import { encodeCifar10 } from '../../src/core/formats/cifar.ts';
import { encodeNpy } from '../../src/core/formats/npy.ts';
import { PROBE_BACKDOOR, PROBE_MISLABELED } from '../../src/core/probes.ts';
import { Rng } from '../../src/core/rng.ts';
import { buildTruthFile, type TruthFile } from '../../src/core/truth.ts';

/**
 * What `poison --probes` and a PyTorch recording elsewhere would hand over, made in-process:
 * train.bin (CIFAR-10 binary), the truth file, and trajectories.npy whose rows behave like
 * BaDLoss's picture of them (backdoors and backdoor probes learned at once, mislabeled ones
 * never, clean ones gradually, with seeded noise).
 */
export async function recordedFiles(rows = 300, epochs = 6) {
  const ds = generateDemoDataset({ seed: 0, train: rows, test: 50 });
  const q = preset('quick');
  const cfg: RunConfig = {
    ...q,
    attacks: [{ id: 'patch', ratio: 0.1 }],
    probes: { n: 12, trigger: 'patch', trusted: 'train-untouched' },
  };
  const prep = prepareExperiment(ds, cfg);
  const truth: TruthFile = buildTruthFile({
    dataset: ds.name,
    classes: ds.classes,
    train: prep.train,
    fingerprint: await splitFingerprint(prep.train),
    seed: cfg.seed,
    truth: prep.truth,
    attacks: prep.attacks,
    requests: cfg.attacks,
    mode: cfg.mode,
    probes: { result: prep.probes, config: cfg.probes },
  });
  const rng = new Rng(7);
  const losses = new Float32Array(rows * epochs);
  for (let i = 0; i < rows; i++) {
    const kind = prep.probes.probeKind[i];
    const fast = prep.truth[i] >= 0 || kind === PROBE_BACKDOOR;
    const never = kind === PROBE_MISLABELED;
    for (let e = 0; e < epochs; e++) {
      const base = fast ? 2.3 * Math.exp(-3 * e) : never ? 2.3 + 0.1 * e : 2.3 * Math.exp(-0.5 * e);
      losses[i * epochs + e] = base + 0.05 * rng.float();
    }
  }
  return {
    trainBin: encodeCifar10(prep.train),
    truth,
    npy: encodeNpy([rows, epochs], losses),
    poisoned: prep.attacks[0].indices.length,
  };
}
