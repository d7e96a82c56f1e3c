/**
 * Resumable training state in the artifact store: weights, optimizer moments and a small JSON
 * (step, settings fingerprint, loss history) under `<prefix>/step-<n>/`, the JSON written last. A
 * step whose state.json is published is complete; the newest complete step is the one resumed. No
 * file is ever overwritten to point at it: the store's put unpublishes a key before rewriting it,
 * so a pointer rewritten at every save (as `latest.json` was) vanishes for a moment at every save,
 * and a worker killed in that moment left a run with no state at all. Pruning deletes a step's
 * state.json first, so a step half-deleted by a crash is incomplete, never half-read. The data
 * cursor and the RNG need no storage of their own: both are functions of (seed, step).
 */
import * as tf from '@tensorflow/tfjs-core';
import { InvalidInputError } from '../errors';
import type { ArtifactRef, ArtifactStore, ListedArtifact } from '../store/artifact';
import { readSafetensors, writeSafetensors } from '../model/safetensors';
import type { DecoderModel } from '../model/decoder';
import type { AdamW } from './optimizer';

export interface TrainStateInfo {
  step: number;
  totalSteps: number;
  /** Identifies the run's data and settings; a state saved under others is not resumed. */
  fingerprint: string;
  backend: string;
  lossHistory: { step: number; loss: number }[];
  savedAt: string;
}

const FILES = ['weights.safetensors', 'optimizer.safetensors', 'state.json'] as const;

/** A saved step's files, by name, from a listing of the state prefix. */
type SavedStep = { step: number; key: string; files: Map<string, ListedArtifact> };

async function hostTensors(vars: Map<string, tf.Variable>, prefix = ''): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, v] of vars) out.set(`${prefix}${name}`, { shape: v.shape, data: (await v.data()) as Float32Array });
  return out;
}

export class TrainingStateStore {
  constructor(
    private readonly store: ArtifactStore,
    private readonly prefix: string,
    private readonly keep = 2,
  ) {}

  async save(model: DecoderModel, optimizer: AdamW, info: TrainStateInfo): Promise<ArtifactRef> {
    const key = `${this.prefix}/step-${String(info.step).padStart(8, '0')}`;
    // A step saved again (the final save after a resume at the last step) is incomplete while it is rewritten.
    await this.store.delete(`${key}/state.json`);
    await this.store.put(`${key}/weights.safetensors`, writeSafetensors(await hostTensors(model.params), 'F32'));
    const moments = new Map([...(await hostTensors(optimizer.m, 'm.')), ...(await hostTensors(optimizer.v, 'v.'))]);
    await this.store.put(`${key}/optimizer.safetensors`, writeSafetensors(moments, 'F32', { format: 'pt', step: String(optimizer.step) }));
    // Last: its manifest is what makes the step complete.
    const ref = await this.store.put(`${key}/state.json`, JSON.stringify(info));
    await this.prune(info.step);
    return ref;
  }

  /** Every step under the prefix, newest first, with whichever of its files are published. */
  private async steps(): Promise<SavedStep[]> {
    const byStep = new Map<number, SavedStep>();
    for (const a of await this.store.list(`${this.prefix}/step-`)) {
      const m = /\/step-(\d+)\/([^/]+)$/.exec(a.key);
      if (!m) continue;
      const step = Number(m[1]);
      const saved = byStep.get(step) ?? { step, key: a.key.slice(0, -m[2]!.length - 1), files: new Map() };
      saved.files.set(m[2]!, a);
      byStep.set(step, saved);
    }
    return [...byStep.values()].sort((a, b) => b.step - a.step);
  }

  private static complete(s: SavedStep): boolean {
    return FILES.every((f) => s.files.has(f));
  }

  /** Keeps the newest `keep` complete steps (`current` among them) and deletes every other step, complete or not. */
  private async prune(current: number): Promise<void> {
    const steps = await this.steps();
    const kept = new Set(steps.filter(TrainingStateStore.complete).slice(0, this.keep).map((s) => s.step));
    kept.add(current);
    for (const s of steps) {
      if (kept.has(s.step)) continue;
      // state.json first: a crash part-way leaves an incomplete step, which nothing resumes from.
      const names = [...s.files.keys()].sort((a, b) => Number(b === 'state.json') - Number(a === 'state.json'));
      for (const name of names) await this.store.delete(s.files.get(name)!.key);
    }
  }

  /** A small JSON artifact kept with the state (e.g. DPO's reference log-probs, computed once). */
  async putJson(name: string, value: unknown): Promise<ArtifactRef> {
    return this.store.put(`${this.prefix}/${name}`, JSON.stringify(value));
  }

  async getJson<T>(name: string): Promise<T | undefined> {
    if (!(await this.store.head(`${this.prefix}/${name}`))) return undefined;
    return JSON.parse((await this.store.get(`${this.prefix}/${name}`)).toString()) as T;
  }

  /** The newest complete saved state, restored into model and optimizer; undefined when there is none. */
  async restoreLatest(model: DecoderModel, optimizer: AdamW, fingerprint: string): Promise<TrainStateInfo | undefined> {
    const latest = (await this.steps()).find(TrainingStateStore.complete);
    if (!latest) return undefined;
    const file = (name: (typeof FILES)[number]) => latest.files.get(name)!;
    const info = JSON.parse((await this.store.get(file('state.json'))).toString()) as TrainStateInfo;
    if (info.fingerprint !== fingerprint) {
      throw new InvalidInputError(`saved training state at ${latest.key} belongs to other data or settings (fingerprint ${info.fingerprint}, now ${fingerprint}); use a new state prefix`);
    }
    const weights = readSafetensors(await this.store.get(file('weights.safetensors')), file('weights.safetensors').uri).tensors;
    const moments = readSafetensors(await this.store.get(file('optimizer.safetensors')), file('optimizer.safetensors').uri);
    const assign = (v: tf.Variable, t: { shape: number[]; data: Float32Array } | undefined, what: string) => {
      if (!t || t.shape.join(',') !== v.shape.join(',')) throw new InvalidInputError(`saved state ${latest.key} has no matching ${what}`);
      tf.tidy(() => v.assign(tf.tensor(t.data, t.shape, 'float32')));
    };
    for (const [name, v] of model.params) assign(v, weights.get(name), `weights for ${name}`);
    for (const [name, v] of optimizer.m) assign(v, moments.tensors.get(`m.${name}`), `first moment for ${name}`);
    for (const [name, v] of optimizer.v) assign(v, moments.tensors.get(`v.${name}`), `second moment for ${name}`);
    optimizer.step = Number(moments.metadata.step ?? info.step);
    return info;
  }
}
