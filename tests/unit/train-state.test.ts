import assert from 'node:assert/strict';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../core/compute/backend';
import { ModelConfig } from '../../core/model/config';
import { DecoderModel } from '../../core/model/decoder';
import type { ArtifactRef, ArtifactStore, Body, ListedArtifact, PutOptions } from '../../core/store/artifact';
import { LocalStore } from '../../core/store/local';
import { AdamW, DEFAULT_ADAMW } from '../../core/train/optimizer';
import { TrainingStateStore, type TrainStateInfo } from '../../core/train/state';
import { tempDir } from '../support/servers';

const config = ModelConfig.parse({
  family: 'llama', vocabSize: 16, hiddenSize: 8, numLayers: 1, numHeads: 2, numKvHeads: 1, headDim: 4,
  intermediateSize: 16, maxPositions: 8, normEps: 1e-5, tieEmbeddings: true, padTokenId: 0, eosTokenId: 1,
});

class Crash extends Error {}

/**
 * A store that dies at its `crashAt`-th write (put or delete), the way a SIGKILLed worker does.
 * A put dies after it has unpublished the key it overwrites and before it publishes the new data:
 * LocalStore and S3Store both unpublish first, so that is the window a kill can land in.
 */
class CrashingStore implements ArtifactStore {
  writes = 0;
  constructor(
    private readonly inner: ArtifactStore,
    private readonly crashAt: number,
  ) {}
  get rootUri(): string {
    return this.inner.rootUri;
  }
  uriFor(key: string): string {
    return this.inner.uriFor(key);
  }
  keyFor(uri: string): string {
    return this.inner.keyFor(uri);
  }
  private async write(): Promise<boolean> {
    this.writes += 1;
    return this.writes === this.crashAt;
  }
  async put(key: string, body: Body, options?: PutOptions): Promise<ArtifactRef> {
    if (await this.write()) {
      await this.inner.delete(key);
      throw new Crash(`killed while writing ${key}`);
    }
    return this.inner.put(key, body, options);
  }
  async delete(key: string): Promise<void> {
    if (await this.write()) throw new Crash(`killed before deleting ${key}`);
    return this.inner.delete(key);
  }
  head(key: string): Promise<ArtifactRef | undefined> {
    return this.inner.head(key);
  }
  get(keyOrRef: string | ArtifactRef): Promise<Buffer> {
    return this.inner.get(keyOrRef);
  }
  getStream(keyOrRef: string | ArtifactRef): Promise<NodeJS.ReadableStream> {
    return this.inner.getStream(keyOrRef);
  }
  download(keyOrRef: string | ArtifactRef, to: string): Promise<ArtifactRef> {
    return this.inner.download(keyOrRef, to);
  }
  list(prefix: string): Promise<ListedArtifact[]> {
    return this.inner.list(prefix);
  }
}

const info = (step: number): TrainStateInfo => ({ step, totalSteps: 10, fingerprint: 'f', backend: 'cpu', lossHistory: [], savedAt: new Date(0).toISOString() });

/** Every weight and both moments set to `step`, so a restored state says which step it came from. */
function stamp(model: DecoderModel, opt: AdamW, step: number): void {
  for (const v of [...model.params.values(), ...opt.m.values(), ...opt.v.values()]) tf.tidy(() => v.assign(tf.fill(v.shape, step)));
  opt.step = step;
}

async function stampOf(model: DecoderModel, opt: AdamW): Promise<number[]> {
  const values = new Set<number>();
  for (const v of [...model.params.values(), ...opt.m.values(), ...opt.v.values()]) for (const x of await v.data()) values.add(x);
  return [...values, opt.step];
}

describe('training state store', () => {
  let tmp: ReturnType<typeof tempDir>;
  let model: DecoderModel;
  let opt: AdamW;
  before(async () => {
    await initBackend(undefined, () => undefined);
    tmp = tempDir('train-state');
    model = DecoderModel.initialise(config, 0);
    opt = new AdamW(model.params, DEFAULT_ADAMW);
  });
  after(() => {
    opt.dispose();
    model.dispose();
    tmp.remove();
  });

  /** Saves steps 1..`last` through a store that dies at write `crashAt` of the last save; true when it died. */
  async function saveUpTo(root: string, last: number, crashAt: number, again = false): Promise<boolean> {
    const inner = new LocalStore(root);
    for (let step = 1; step < last; step++) {
      stamp(model, opt, step);
      await new TrainingStateStore(inner, 'run/state').save(model, opt, info(step));
    }
    if (again) {
      stamp(model, opt, last);
      await new TrainingStateStore(inner, 'run/state').save(model, opt, info(last));
    }
    stamp(model, opt, last);
    try {
      await new TrainingStateStore(new CrashingStore(inner, crashAt), 'run/state').save(model, opt, info(last));
      return false;
    } catch (err) {
      if (!(err instanceof Crash)) throw err;
      return true;
    }
  }

  async function restored(root: string): Promise<number | undefined> {
    stamp(model, opt, -1);
    const got = await new TrainingStateStore(new LocalStore(root), 'run/state').restoreLatest(model, opt, 'f');
    if (!got) return undefined;
    assert.deepEqual(await stampOf(model, opt), [got.step, got.step], `step ${got.step}'s weights, moments and optimizer step`);
    return got.step;
  }

  it('resumes from the last complete step wherever a kill lands in a save, and the save after it completes', async () => {
    let crashes = 0;
    for (let crashAt = 1; ; crashAt++) {
      const root = path.join(tmp.dir, `kill-${crashAt}`);
      const died = await saveUpTo(root, 4, crashAt);
      const step = await restored(root);
      if (!died) {
        assert.equal(step, 4);
        break;
      }
      crashes += 1;
      assert.ok(step === 3 || step === 4, `killed at write ${crashAt} of step 4's save: resumed from ${step}, not step 3 or 4`);
      // The run goes on from there and saves the next step; that save must not trip over what the kill left.
      stamp(model, opt, 5);
      await new TrainingStateStore(new LocalStore(root), 'run/state').save(model, opt, info(5));
      assert.equal(await restored(root), 5);
      const left = (await new LocalStore(root).list('run/state/')).map((a) => a.key.replace(/^run\/state\//, ''));
      assert.deepEqual(new Set(left.map((k) => k.split('/')[0])).size, 2, `two steps kept, not: ${left.join(', ')}`);
    }
    assert.ok(crashes >= 4, `a save has at least 4 writes to die in, saw ${crashes}`);
  });

  it('resumes from a step that is saved again (the final save after a resume at the last step) wherever the kill lands', async () => {
    for (let crashAt = 1; ; crashAt++) {
      const root = path.join(tmp.dir, `again-${crashAt}`);
      const died = await saveUpTo(root, 4, crashAt, true);
      const step = await restored(root);
      assert.ok(step === 3 || step === 4, `killed at write ${crashAt} of step 4's second save: resumed from ${step}`);
      if (!died) break;
    }
  });

  it('refuses a state saved under another fingerprint', async () => {
    const root = path.join(tmp.dir, 'fingerprint');
    await saveUpTo(root, 2, 0);
    await assert.rejects(new TrainingStateStore(new LocalStore(root), 'run/state').restoreLatest(model, opt, 'other'), /belongs to other data or settings/);
  });
});
