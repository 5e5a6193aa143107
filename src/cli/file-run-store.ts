import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { deserialize, serialize } from 'node:v8';
import { PHASES, type Checkpoint, type Phase, type RunRecord, type RunStore } from '../core/run.ts';

/**
 * Runs in a directory, for the CLI (`audit --state <dir>`): `<id>.run` and `<id>.<phase>.ckpt`,
 * in V8's structured-clone format (typed arrays stay binary). Every file is written to a
 * temporary name and renamed, so a crash leaves the previous version. An epoch writes its
 * checkpoint before its run record: the checkpoint is what training resumes from.
 */
export class FileRunStore implements RunStore {
  constructor(private readonly dir: string) {}

  private runPath(id: string) {
    return join(this.dir, `${id}.run`);
  }

  private ckptPath(id: string, phase: Phase) {
    return join(this.dir, `${id}.${phase}.ckpt`);
  }

  private async write(path: string, value: unknown): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const tmp = `${path}.tmp-${process.pid}`;
    await writeFile(tmp, serialize(value));
    await rename(tmp, path);
  }

  private async read<T>(path: string): Promise<T | undefined> {
    if (!existsSync(path)) return undefined;
    return deserialize(await readFile(path)) as T;
  }

  findRun(id: string): Promise<RunRecord | undefined> {
    return this.read<RunRecord>(this.runPath(id));
  }

  async listRuns(): Promise<RunRecord[]> {
    if (!existsSync(this.dir)) return [];
    const names = (await readdir(this.dir)).filter((f) => f.endsWith('.run'));
    const runs = await Promise.all(names.map((f) => this.read<RunRecord>(join(this.dir, f))));
    return runs.filter((r): r is RunRecord => !!r).sort((a, b) => b.updatedAt - a.updatedAt);
  }

  putRun(r: RunRecord): Promise<void> {
    return this.write(this.runPath(r.id), r);
  }

  async deleteRun(id: string): Promise<void> {
    await rm(this.runPath(id), { force: true });
    for (const p of PHASES) await rm(this.ckptPath(id, p), { force: true });
  }

  loadCheckpoint(id: string, phase: Phase): Promise<Checkpoint | undefined> {
    return this.read<Checkpoint>(this.ckptPath(id, phase));
  }

  async commitEpoch(r: RunRecord, phase: Phase, c: Checkpoint): Promise<void> {
    await this.write(this.ckptPath(r.id, phase), c);
    await this.write(this.runPath(r.id), r);
  }

  async putRunDropping(r: RunRecord, drop: Phase[]): Promise<void> {
    // The run goes first: a crash in between leaves a checkpoint its record no longer mentions,
    // which is never resumed (a phase resumes only a checkpoint of its own recipe and rows) and
    // is overwritten by the next epoch — never a finished phase whose trajectories are gone.
    await this.write(this.runPath(r.id), r);
    for (const p of drop) await rm(this.ckptPath(r.id, p), { force: true });
  }
}
