/**
 * `npx tsx bench/oracle.ts`: the ceiling of any removal defense — the model retrained without
 * poisons picked by the ground truth, which no detector sees. It says whether an attack that
 * survives the defense survives because its poisons were not found (detection) or because it
 * plants its backdoor some other way (the removal could not help). Each removal set is one
 * retraining per seed, cached beside the detection bench's (bench/detection-data.ts: the same
 * stored probationary runs and setting, BENCH_DATA for natural images).
 *
 * BENCH_SEEDS (default "0,1,2,3,4,5,6,7"); BENCH_ORACLE: the removal sets, comma-separated — "all"
 * (every poison), "none" (nothing: the retraining recipe alone) or an attack id (that attack's
 * poisons only); default "all,warping". BENCH_JITTER=on retrains with sub-pixel jitter. BENCH_HOLD
 * (default 0.05; 0.2 is the verdict's bar): from what undefended ASR an attack counts in "every
 * attack halved" — at chance no removal halves it.
 */
import { DEFAULT_PROBE_TRIGGER } from '../src/core/experiment.ts';
import { PROBE_NONE } from '../src/core/probes.ts';
import { averageOf } from '../src/core/report.ts';
import { probationary, retrained, targetChecks } from './detection-data.ts';

const seeds = (process.env.BENCH_SEEDS ?? '0,1,2,3,4,5,6,7').split(',').map(Number);
const sets = (process.env.BENCH_ORACLE ?? 'all,warping').split(',');
const pct = (x: number) => (100 * x).toFixed(1);
const log = (s: string) => process.stdout.write(s + '\n');

for (const seed of seeds) {
  const run = await probationary(seed, DEFAULT_PROBE_TRIGGER, log);
  const p = run.prepared;
  const ids = p.attacks.map((a) => a.id);
  for (const set of sets)
    if (set !== 'all' && set !== 'none' && !ids.includes(set as (typeof ids)[number]))
      throw new Error(
        `BENCH_ORACLE: "${set}" is neither "all", "none" nor an attack of the run (${ids.join(', ')})`,
      );
  const asrs = (asr: Record<string, number>) => ids.map((a) => pct(asr[a])).join(' / ');
  log(
    `seed ${seed}: undefended clean acc ${pct(run.undefended.cleanAccuracy)}, avg ASR ${pct(averageOf(run.undefended.asr))}; ASR ${ids.join(' / ')} ${asrs(run.undefended.asr)}`,
  );
  for (const set of sets) {
    const attack = ids.indexOf(set as (typeof ids)[number]);
    const drop: number[] = [];
    for (let i = 0; i < p.train.count; i++)
      if (
        p.probes.probeKind[i] === PROBE_NONE &&
        set !== 'none' &&
        (set === 'all' ? p.truth[i] >= 0 : p.truth[i] === attack)
      )
        drop.push(i);
    const ev = await retrained(run, drop, log);
    // No clean row is removed; the other three targets as the detection bench checks them.
    const { ok, notHalved } = targetChecks(run.undefended, ev, 0);
    log(
      `  without ${set === 'all' ? 'every poison' : set === 'none' ? 'nothing' : `the ${set} poisons`} (${drop.length} rows): clean acc ${pct(ev.cleanAccuracy)}, avg ASR ${pct(averageOf(ev.asr))}; ASR ${asrs(ev.asr)}; targets ${ok.map((x) => (x ? '✓' : '✗')).join('')}${notHalved.length ? ` (not halved: ${notHalved.join(', ')})` : ''}`,
    );
  }
}
