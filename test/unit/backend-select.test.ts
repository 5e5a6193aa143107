import { describe, expect, it } from 'vitest';
import {
  cacheUsable,
  chooseBackend,
  CUT_OFF_FACTOR,
  describeMeasurement,
  deviceKey,
  MEASURE_VERSION,
  measureCandidates,
  pickFastest,
  type BackendCandidate,
  type CandidateResult,
  type DeviceFacts,
  type StepBudget,
} from '../../src/ml/backend-select.ts';
import { tfjsCandidate } from '../../src/ml/backend.ts';
import { cpuTf } from './tf-setup.ts';

/** A fake backend: fixed availability, software flag and rates; records what happened to it. */
function fake(
  name: string,
  rate: number,
  opts: {
    software?: boolean;
    unavailable?: string;
    warmRate?: number;
    failActivate?: boolean;
  } = {},
) {
  const log: string[] = [];
  const c: BackendCandidate & { log: string[] } = {
    name,
    log,
    available: async () => opts.unavailable ?? null,
    describe: async () => ({ label: name.toUpperCase(), software: !!opts.software }),
    async timeStep(b: StepBudget) {
      log.push(`time cutBelow=${b.cutBelow}`);
      const warm = opts.warmRate ?? rate;
      if (warm < b.cutBelow) return { imagesPerSecond: warm, cutOff: true };
      return { imagesPerSecond: rate, cutOff: false };
    },
    async activate() {
      if (opts.failActivate) throw new Error(`${name} lost its device`);
      log.push('activate');
    },
  };
  return c;
}

const r = (name: string, ips?: number, extra: Partial<CandidateResult> = {}): CandidateResult => ({
  name,
  label: name,
  software: false,
  ...(ips === undefined ? {} : { imagesPerSecond: ips }),
  ...extra,
});

const facts: DeviceFacts = {
  userAgent: 'Chrome/140',
  threads: 2,
  crossOriginIsolated: true,
  adapter: 'google / swiftshader',
};

describe('pickFastest', () => {
  it('picks the highest measured rate', () => {
    expect(pickFastest([r('cpu', 24), r('webgl', 31), r('webgpu', 3)])).toBe('webgl');
  });
  it('never picks a software adapter that is slower, nor one that is only as fast', () => {
    const sw = (ips?: number) => r('webgpu', ips, { software: true });
    expect(pickFastest([sw(3), r('cpu', 24)])).toBe('cpu');
    expect(pickFastest([sw(24), r('cpu', 24)])).toBe('cpu');
    // …but a software adapter that really is faster wins
    expect(pickFastest([sw(30), r('cpu', 24)])).toBe('webgpu');
  });
  it('ignores unavailable, failed and stopped candidates when something was timed', () => {
    expect(
      pickFastest([
        r('webgpu', undefined, { timedOutMs: 3000 }),
        r('webgl', 99, { error: 'lost context' }),
        r('x', undefined, { unavailable: 'no' }),
        r('cpu', 5),
      ]),
    ).toBe('cpu');
  });
  it('without any timing prefers an available hardware candidate, then software', () => {
    expect(
      pickFastest([
        r('webgpu', undefined, { software: true, timedOutMs: 3000 }),
        r('cpu', undefined, { timedOutMs: 12000 }),
      ]),
    ).toBe('cpu');
    expect(pickFastest([r('webgpu', undefined, { software: true })])).toBe('webgpu');
    expect(pickFastest([r('webgpu', undefined, { unavailable: 'none' })])).toBeNull();
  });
});

describe('device key and cache', () => {
  const m = {
    version: MEASURE_VERSION,
    key: deviceKey(facts),
    candidates: ['cpu', 'webgl', 'webgpu'],
    results: [r('cpu', 24), r('webgl', 2), r('webgpu', 1)],
    chosen: 'cpu',
    measuredAt: 1,
  };
  it('changes with every fact that decides speed', () => {
    const k = deviceKey(facts);
    expect(deviceKey({ ...facts })).toBe(k);
    for (const change of [
      { userAgent: 'Chrome/141' },
      { threads: 8 },
      { crossOriginIsolated: false },
      { adapter: 'nvidia / ampere' },
    ])
      expect(deviceKey({ ...facts, ...change })).not.toBe(k);
  });
  it('is used only for the same device, version and candidate list', () => {
    const names = ['cpu', 'webgl', 'webgpu'];
    expect(cacheUsable(m, m.key, names)).toBe(true);
    expect(cacheUsable(m, deviceKey({ ...facts, threads: 4 }), names)).toBe(false);
    expect(cacheUsable({ ...m, version: MEASURE_VERSION - 1 }, m.key, names)).toBe(false);
    // registering a new backend (the WebAssembly engine) means measuring again
    expect(cacheUsable(m, m.key, ['wasm', ...names])).toBe(false);
    expect(cacheUsable({ ...m, chosen: 'gone' }, m.key, names)).toBe(false);
    expect(cacheUsable(null, m.key, names)).toBe(false);
  });
});

describe('measureCandidates', () => {
  it('times each available candidate and cuts off one 10× slower than the best so far', async () => {
    const cpu = fake('cpu', 30);
    const slow = fake('webgpu', 5, { software: true, warmRate: 2 });
    const gone = fake('webgl', 0, { unavailable: 'no adapter' });
    const res = await measureCandidates([cpu, gone, slow]);
    expect(res.map((x) => [x.name, x.imagesPerSecond, x.cutOff ?? false])).toEqual([
      ['cpu', 30, false],
      ['webgl', undefined, false],
      ['webgpu', 2, true],
    ]);
    expect(res[1].unavailable).toBe('no adapter');
    expect(gone.log).toEqual([]); // never timed
    expect(slow.log).toEqual([`time cutBelow=${30 / CUT_OFF_FACTOR}`]);
  });
  it('leaves a candidate untimed when its isolated timing passes the deadline', async () => {
    const deadlines: number[] = [];
    const res = await measureCandidates(
      [fake('cpu', 30), fake('webgpu', 5, { software: true })],
      3000,
      async (name, _b, deadline) => {
        deadlines.push(deadline);
        return name === 'cpu' ? { imagesPerSecond: 30, cutOff: false } : null;
      },
    );
    expect(deadlines).toEqual([12000, 3000]); // hardware gets longer to compile its kernels
    expect(res[1]).toMatchObject({ name: 'webgpu', timedOutMs: 3000 });
    expect(res[1].imagesPerSecond).toBeUndefined();
    expect(describeMeasurement({ results: res, chosen: 'cpu' })).toBe(
      'fastest here: 30 img/s; WEBGPU: no step within 3 s (stopped)',
    );
  });
});

describe('chooseBackend', () => {
  const key = deviceKey(facts);
  it('measures, activates the fastest and returns a measurement to cache', async () => {
    const cs = [fake('cpu', 30), fake('webgpu', 3, { software: true })];
    const c = await chooseBackend(cs, key);
    expect(c.chosen.name).toBe('cpu');
    expect(c.measuredNow).toBe(true);
    expect(c.measurement).toMatchObject({ key, chosen: 'cpu', candidates: ['cpu', 'webgpu'] });
    expect(cs[0].log).toContain('activate');
    expect(cs[1].log).not.toContain('activate');
  });
  it('uses a usable cache without timing anything', async () => {
    const cs = [fake('cpu', 30), fake('webgl', 80)];
    const first = await chooseBackend(cs, key);
    expect(first.chosen.name).toBe('webgl');
    const again = [fake('cpu', 30), fake('webgl', 80)];
    const c = await chooseBackend(again, key, { cached: [first.measurement!] });
    expect(c.measuredNow).toBe(false);
    expect(c.chosen.name).toBe('webgl');
    expect(again.flatMap((x) => x.log)).toEqual(['activate']);
    // what could not run last time is still said
    const gone = [fake('cpu', 30), fake('webgpu', 0, { unavailable: 'no adapter' })];
    const m = (await chooseBackend(gone, key)).measurement;
    const c2 = await chooseBackend(gone, key, { cached: [m!] });
    expect(c2).toMatchObject({ measuredNow: false, reasons: ['WEBGPU: no adapter'] });
    // another device measures afresh
    const other = await chooseBackend(again, deviceKey({ ...facts, threads: 16 }), {
      cached: [first.measurement!],
    });
    expect(other.measuredNow).toBe(true);
  });
  it('honours a forced backend that can run, else says why and measures', async () => {
    const cs = [fake('cpu', 30), fake('webgpu', 3, { software: true })];
    const f = await chooseBackend(cs, key, { forced: 'webgpu' });
    expect(f).toMatchObject({ forced: true, measuredNow: false });
    expect(f.chosen.name).toBe('webgpu');
    const g = await chooseBackend(
      [fake('cpu', 30), fake('webgl', 9, { unavailable: 'no WebGL2' })],
      key,
      { forced: 'webgl' },
    );
    expect(g.forced).toBe(false);
    expect(g.chosen.name).toBe('cpu');
    expect(g.reasons).toEqual(['WEBGL: no WebGL2']);
    const h = await chooseBackend([fake('cpu', 30)], key, { forced: 'wasm' });
    expect(h.chosen.name).toBe('cpu');
    expect(h.reasons[0]).toMatch(/^WASM: not a backend of this build/);
  });
  it('falls to the next fastest when the fastest will not activate, and names every failure', async () => {
    const c = await chooseBackend(
      [fake('cpu', 30), fake('webgl', 80, { failActivate: true })],
      key,
    );
    expect(c.chosen.name).toBe('cpu');
    expect(c.reasons).toEqual(['WEBGL: webgl lost its device']);
    await expect(
      chooseBackend([fake('a', 1, { unavailable: 'x' }), fake('b', 1, { unavailable: 'y' })], key),
    ).rejects.toThrow(/no compute backend could start here: A: x; B: y/);
  });
  it('does not time a lone candidate (Node)', async () => {
    const cpu = fake('cpu', 30);
    const c = await chooseBackend([cpu], key);
    expect(c.chosen.name).toBe('cpu');
    expect(cpu.log).toEqual(['activate']);
  });
});

describe('the tfjs CPU candidate', () => {
  it('times a real step of the probe model and leaves no tensors behind', async () => {
    const tf = await cpuTf();
    const c = tfjsCandidate(tf, 'cpu');
    expect(await c.available()).toBeNull();
    const before = tf.memory().numTensors;
    const t = await c.timeStep({ capMs: 60_000, cutBelow: 0 });
    expect(t.cutOff).toBe(false);
    expect(t.imagesPerSecond).toBeGreaterThan(0);
    expect(tf.memory().numTensors).toBe(before);
    // an impossible bar cuts it off after the warm-up, with a finite lower bound
    const cut = await c.timeStep({ capMs: 60_000, cutBelow: Infinity });
    expect(cut.cutOff).toBe(true);
    expect(Number.isFinite(cut.imagesPerSecond)).toBe(true);
    expect(tf.memory().numTensors).toBe(before);
  });
});
