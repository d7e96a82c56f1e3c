/**
 * Picks the fastest TensorFlow.js backend this machine allows, once per process:
 * `tensorflow-gpu` (tfjs-node-gpu, CUDA) → `tensorflow` (tfjs-node, native CPU) → `wasm` → `cpu`.
 *
 * SRLM_BACKEND (or the config's compute.backend) forces one. A backend that is missing or fails to
 * load is skipped with a one-line reason; the choice is printed once and recorded in every
 * checkpoint and report (see `backendInfo`).
 *
 * The GPU path is untested here: the development machines have no GPU, and the GPU machine that
 * is sometimes lent has no Node.js. It loads only where tfjs-node-gpu's binding was built against
 * a CUDA libtensorflow.
 */
import { existsSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
// tfjs-core alone registers no gradients; the full tfjs package registers them all (in tfjs's
// global registries, shared by every copy of core). Training needs them on every backend.
import '@tensorflow/tfjs';
import { InvalidInputError } from '../errors';

export const BACKENDS = ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKENDS)[number];
export type BackendPreference = BackendName | 'auto';

export interface BackendInfo {
  /** Our name for it. */
  name: BackendName;
  /** tfjs's name for it (`tensorflow`, `wasm`, `cpu`). */
  tfjsBackend: string;
  tfjsVersion: string;
  /** Why faster backends were skipped. */
  skipped: string[];
}

let chosen: BackendInfo | undefined;
let choosing: Promise<BackendInfo> | undefined;

function firstLine(err: unknown): string {
  return String((err as Error)?.message ?? err).split('\n')[0]!.slice(0, 200);
}

/**
 * tfjs-node(-gpu) registers its kernels before it loads its binding, so requiring a package
 * whose binding is missing leaves half a backend behind: look for the binding first.
 */
function requireNative(pkg: string, hint: string): void {
  let dir: string;
  try {
    dir = path.dirname(require.resolve(`${pkg}/package.json`));
  } catch {
    throw new Error(`${pkg} is not installed (optional dependency)`);
  }
  const lib = path.join(dir, 'lib');
  const found = existsSync(lib) && readdirSync(lib).some((d) => existsSync(path.join(lib, d, 'tfjs_binding.node')));
  if (!found) throw new Error(`${pkg} has no native binding built (${hint})`);
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- optional native package, loaded only when chosen
  require(pkg);
}

async function tryBackend(name: BackendName): Promise<void> {
  // Each TensorFlow device gets its own intra-op pool, so our graph sessions can run on fewer
  // threads than eager ops (see BINDING_PATCH in infra/native-backend.ts). Read once, when the
  // binding loads.
  if (name === 'tensorflow' || name === 'tensorflow-gpu') process.env.TF_OVERRIDE_GLOBAL_THREADPOOL ??= '1';
  switch (name) {
    case 'tensorflow-gpu':
      // Registers the `tensorflow` backend on the shared tfjs-core engine, CUDA-enabled.
      requireNative('@tensorflow/tfjs-node-gpu', 'it needs a CUDA build of libtensorflow; untested here');
      break;
    case 'tensorflow':
      requireNative('@tensorflow/tfjs-node', 'run `npm run setup`');
      break;
    case 'wasm':
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- registers the wasm backend only when chosen
      require('@tensorflow/tfjs-backend-wasm');
      break;
    case 'cpu':
      break;
  }
  const tfjsName = name === 'tensorflow-gpu' ? 'tensorflow' : name;
  if (!(await tf.setBackend(tfjsName))) throw new Error(`tfjs could not initialise the ${tfjsName} backend`);
  await tf.ready();
  // One real op, so a backend that registers but cannot compute is caught here, not mid-training.
  const probe = tf.add(tf.tensor1d([1, 2]), tf.tensor1d([3, 4]));
  const values = await probe.data();
  probe.dispose();
  if (values[0] !== 4 || values[1] !== 6) throw new Error(`the ${tfjsName} backend computed 1+3=${values[0]}`);
}

/** Initialises the backend (once per process) and returns what was chosen. */
export function initBackend(preference?: BackendPreference, log: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Promise<BackendInfo> {
  if (chosen) return Promise.resolve(chosen);
  choosing ??= (async () => {
    const wanted = (preference ?? (process.env.SRLM_BACKEND || undefined) ?? 'auto') as BackendPreference;
    if (wanted !== 'auto' && !BACKENDS.includes(wanted)) {
      throw new InvalidInputError(`unknown backend ${JSON.stringify(wanted)} (SRLM_BACKEND or compute.backend): use auto, ${BACKENDS.join(', ')}`);
    }
    process.env.TF_CPP_MIN_LOG_LEVEL ??= '2'; // libtensorflow's start-up chatter is not for users
    tf.env().set('PROD', true); // no "install tfjs-node" banner from the cpu backend; we choose backends ourselves
    const order: BackendName[] = wanted === 'auto' ? [...BACKENDS] : [wanted];
    const skipped: string[] = [];
    for (const name of order) {
      try {
        await tryBackend(name);
        chosen = { name, tfjsBackend: tf.getBackend(), tfjsVersion: tf.version_core, skipped };
        log(`srlm: compute backend ${name}${skipped.length ? ` (skipped: ${skipped.join('; ')})` : ''}`);
        return chosen;
      } catch (err) {
        skipped.push(`${name}: ${firstLine(err)}`);
      }
    }
    throw new Error(`no TensorFlow.js backend could be initialised: ${skipped.join('; ')}`);
  })();
  return choosing;
}

/** The backend chosen by initBackend; an error before it ran. */
export function backendInfo(): BackendInfo {
  if (!chosen) throw new Error('initBackend() has not run');
  return chosen;
}

export { tf };
