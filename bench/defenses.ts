/**
 * `npx tsx bench/defenses.ts`: speed and separation of the baseline defenses (never asserted in
 * tests). Prints one line per measurement and, last, one JSON object with every figure:
 *   frequencyAuroc[probeTrigger][model][attack]   demo set, 5,000 images, every attack at its
 *                                                 default ratio, 100 probes per kind
 *   frequencySeconds[model][N]                    whole defense on N = 5,000 / 50,000 images
 *   spectralSeconds[D], activationClusteringSeconds[D]   50,000 synthetic features, 10 classes
 * Set BENCH_PART=quality|frequency|features to run one part, BENCH_MLP=0 to skip the MLP.
 */
import { poisonDataset } from '../src/core/attacks/plan.ts';
import { ATTACK_IDS, type AttackId } from '../src/core/attacks/triggers.ts';
import { IMAGE_BYTES } from '../src/core/dataset.ts';
import { generateDemoDataset } from '../src/core/demo.ts';
import {
  activationClustering,
  frequencyAnalysis,
  spectralSignatures,
  summarizeDefense,
  type DefenseInputs,
} from '../src/core/defenses/index.ts';
import { insertProbes } from '../src/core/probes.ts';
import { Rng } from '../src/core/rng.ts';

const log = (s: string) => process.stdout.write(s + '\n');
const part = process.env.BENCH_PART ?? 'all';
const models: ('logistic' | 'mlp')[] =
  process.env.BENCH_MLP === '0' ? ['logistic'] : ['logistic', 'mlp'];
const results: {
  frequencyAuroc: Record<string, Record<string, Record<string, number>>>;
  frequencySeconds: Record<string, Record<number, number>>;
  spectralSeconds: Record<number, number>;
  activationClusteringSeconds: Record<number, number>;
} = {
  frequencyAuroc: {},
  frequencySeconds: {},
  spectralSeconds: {},
  activationClusteringSeconds: {},
};

function seconds<T>(f: () => T): [T, number] {
  const t = performance.now();
  const r = f();
  return [r, (performance.now() - t) / 1000];
}

if (part === 'all' || part === 'quality') {
  const ds = generateDemoDataset({ seed: 0, train: 5000, test: 10 });
  const train = ds.splits.train!;
  const poison = poisonDataset(
    train,
    ATTACK_IDS.map((id) => ({ id })),
    { seed: 0, numClasses: 10 },
  );
  for (const trigger of ['patch', 'sinusoid'] as AttackId[]) {
    const probes = insertProbes(poison.train, poison.truth, {
      n: 100,
      seed: 0,
      numClasses: 10,
      trigger,
    });
    const inp: DefenseInputs = {
      labels: probes.train.labels,
      numClasses: 10,
      probeKind: probes.probeKind,
      images: probes.train.images,
      seed: 0,
    };
    results.frequencyAuroc[trigger] = {};
    for (const model of models) {
      const [res, s] = seconds(() => frequencyAnalysis(inp, { model }));
      const sum = summarizeDefense(
        res,
        poison.truth,
        probes.probeKind,
        poison.attacks,
        probes.train.labels,
        10,
      );
      results.frequencyAuroc[trigger][model] = sum.auroc;
      log(
        `frequency probes=${trigger} model=${model}: ${s.toFixed(1)} s, AUROC ` +
          Object.entries(sum.auroc)
            .map(([k, v]) => `${k} ${v.toFixed(3)}`)
            .join(', ') +
          `; removed clean ${sum.removed.clean}, all ${sum.removed.total}`,
      );
    }
  }
}

if (part === 'all' || part === 'frequency') {
  const base = generateDemoDataset({ seed: 1, train: 5000, test: 10 }).splits.train!;
  for (const N of [5000, 50000]) {
    const images = new Uint8Array(N * IMAGE_BYTES);
    const labels = new Uint8Array(N);
    for (let i = 0; i < N; i++) {
      images.set(
        base.images.subarray((i % 5000) * IMAGE_BYTES, ((i % 5000) + 1) * IMAGE_BYTES),
        i * IMAGE_BYTES,
      );
      labels[i] = base.labels[i % 5000];
    }
    const probeKind = new Uint8Array(N);
    // 250 probes per kind, as the paper; backdoor probes get a bright corner
    for (let i = 0; i < 750; i++) probeKind[i] = 1 + Math.floor(i / 250);
    for (let i = 250; i < 500; i++) images.fill(255, i * IMAGE_BYTES, i * IMAGE_BYTES + 12);
    for (const model of models) {
      const [, s] = seconds(() =>
        frequencyAnalysis({ labels, numClasses: 10, probeKind, images, seed: 0 }, { model }),
      );
      (results.frequencySeconds[model] ??= {})[N] = s;
      log(`frequency model=${model} N=${N}: ${s.toFixed(1)} s`);
    }
  }
}

if (part === 'all' || part === 'features') {
  const N = 50000;
  for (const D of [64, 512]) {
    const rng = new Rng(D);
    const values = Float32Array.from({ length: N * D }, () => rng.normal());
    const labels = Uint8Array.from({ length: N }, (_, i) => i % 10);
    const inp: DefenseInputs = {
      labels,
      numClasses: 10,
      probeKind: new Uint8Array(N),
      features: { dim: D, values },
      seed: 0,
    };
    const [, ss] = seconds(() => spectralSignatures(inp));
    results.spectralSeconds[D] = ss;
    log(`spectral N=${N} D=${D}: ${ss.toFixed(1)} s`);
    const [, sa] = seconds(() => activationClustering(inp));
    results.activationClusteringSeconds[D] = sa;
    log(`activation-clustering N=${N} D=${D}: ${sa.toFixed(1)} s`);
  }
}

log(JSON.stringify(results));
