/**
 * Resumable training state in the artifact store: weights, optimizer moments and a small JSON
 * (step, settings fingerprint, loss history) under `<prefix>/step-<n>/`, then `<prefix>/latest.json`
 * pointing at it, written last, so a crash mid-save leaves the previous state in force. The data
 * cursor and the RNG need no storage of their own: both are functions of (seed, step).
 */
import * as tf from '@tensorflow/tfjs-core';
import { InvalidInputError } from '../errors';
import type { ArtifactRef, ArtifactStore } from '../store/artifact';
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

interface Latest {
  step: number;
  key: string;
  info: ArtifactRef;
  weights: ArtifactRef;
  optimizer: ArtifactRef;
}

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
    const weights = await this.store.put(`${key}/weights.safetensors`, writeSafetensors(await hostTensors(model.params), 'F32'));
    const moments = new Map([...(await hostTensors(optimizer.m, 'm.')), ...(await hostTensors(optimizer.v, 'v.'))]);
    const opt = await this.store.put(`${key}/optimizer.safetensors`, writeSafetensors(moments, 'F32', { format: 'pt', step: String(optimizer.step) }));
    const infoRef = await this.store.put(`${key}/state.json`, JSON.stringify(info));
    const latest: Latest = { step: info.step, key, info: infoRef, weights, optimizer: opt };
    const ref = await this.store.put(`${this.prefix}/latest.json`, JSON.stringify(latest));
    await this.prune(info.step);
    return ref;
  }

  private async prune(current: number): Promise<void> {
    const listed = await this.store.list(`${this.prefix}/step-`);
    const steps = [...new Set(listed.map((l) => /step-(\d+)\//.exec(l.key)?.[1]).filter(Boolean) as string[])].sort();
    for (const s of steps.slice(0, Math.max(0, steps.length - this.keep))) {
      if (Number(s) === current) continue;
      for (const l of listed.filter((x) => x.key.includes(`/step-${s}/`))) await this.store.delete(l.key);
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

  /** The latest saved state, restored into model and optimizer; undefined when there is none. */
  async restoreLatest(model: DecoderModel, optimizer: AdamW, fingerprint: string): Promise<TrainStateInfo | undefined> {
    if (!(await this.store.head(`${this.prefix}/latest.json`))) return undefined;
    const latest = JSON.parse((await this.store.get(`${this.prefix}/latest.json`)).toString()) as Latest;
    const info = JSON.parse((await this.store.get(latest.info)).toString()) as TrainStateInfo;
    if (info.fingerprint !== fingerprint) {
      throw new InvalidInputError(`saved training state at ${latest.key} belongs to other data or settings (fingerprint ${info.fingerprint}, now ${fingerprint}); use a new state prefix`);
    }
    const weights = readSafetensors(await this.store.get(latest.weights), latest.weights.uri).tensors;
    const moments = readSafetensors(await this.store.get(latest.optimizer), latest.optimizer.uri);
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
