/**
 * Provisions TensorFlow.js's native CPU backend (`@tensorflow/tfjs-node`) without its own install
 * script, which downloads libtensorflow from a host these machines cannot reach.
 *
 * The TensorFlow C library ships inside the `tensorflow-cpu` wheel on PyPI and exports the full C
 * API that tfjs-node's binding uses. This step, cached and idempotent:
 *  1. downloads the pinned wheel with pip (sha256-checked) and unpacks only the two shared
 *     libraries and the C headers into the cache (≈ 920 MB, once);
 *  2. links them into tfjs-node's `deps/` the way its own installer lays them out;
 *  3. builds the N-API binding with node-gyp against the installed Node headers (`--nodedir`),
 *     or reuses a binding built earlier for the same versions;
 *  4. checks, in a child process, that the `tensorflow` backend loads and computes.
 *
 * Everything works without it (the wasm and cpu backends are slower); a failure here is reported,
 * never fatal to `npm test` or `npm start`.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, promises as fs, readFileSync, realpathSync } from 'node:fs';
import * as path from 'node:path';
import { cacheDir } from './paths';
import { fileSha256, installAtomically, onPath, runVisible, type Log } from './install';

export const TENSORFLOW_WHEEL = {
  name: 'tensorflow-cpu',
  version: '2.21.0',
  platform: 'manylinux_2_27_x86_64',
  python: '3.11',
  abi: 'cp311',
  sha256: '2b847d217b02ee7731ed91431daf3250daa0196c3c94614d23be27232e6e5b6c',
};

export interface NativeStatus {
  ok: boolean;
  detail: string;
}

function tfjsNodeDir(): string | undefined {
  try {
    return path.dirname(require.resolve('@tensorflow/tfjs-node/package.json'));
  } catch {
    return undefined;
  }
}

/** The unpacked TensorFlow C library in the cache (downloading and unpacking it once). */
async function ensureLibtensorflow(log: Log): Promise<string> {
  const dir = path.join(cacheDir(), `libtensorflow-cpu-${TENSORFLOW_WHEEL.version}`);
  if (existsSync(path.join(dir, 'lib', 'libtensorflow_cc.so.2'))) return dir;
  const python = onPath('python3') ?? onPath('python');
  if (!python) throw new Error('python3 with pip is needed to fetch the TensorFlow C library');
  await installAtomically(dir, async (tmp) => {
    log(`native backend: fetching ${TENSORFLOW_WHEEL.name}==${TENSORFLOW_WHEEL.version} (274 MB, once) for its TensorFlow C library`);
    await runVisible(python, [
      '-m', 'pip', 'download', '--no-deps', '--only-binary', ':all:', '--disable-pip-version-check', '--progress-bar', 'off',
      '--platform', TENSORFLOW_WHEEL.platform, '--python-version', TENSORFLOW_WHEEL.python, '--implementation', 'cp', '--abi', TENSORFLOW_WHEEL.abi,
      '--dest', tmp, `${TENSORFLOW_WHEEL.name}==${TENSORFLOW_WHEEL.version}`,
    ], { log, label: 'native backend', forward: false });
    const wheel = (await fs.readdir(tmp)).find((f) => f.endsWith('.whl'));
    if (!wheel) throw new Error('pip downloaded no wheel');
    const actual = await fileSha256(path.join(tmp, wheel));
    if (actual !== TENSORFLOW_WHEEL.sha256) throw new Error(`${wheel} has sha256 ${actual}, expected the pinned ${TENSORFLOW_WHEEL.sha256}`);
    log('native backend: sha256 verified; unpacking the C library and headers');
    const unpack = [
      'import sys, zipfile, os, shutil',
      'z = zipfile.ZipFile(sys.argv[1]); out = sys.argv[2]',
      'for n in z.namelist():',
      "    if n in ('tensorflow/libtensorflow_cc.so.2', 'tensorflow/libtensorflow_framework.so.2'):",
      "        with z.open(n) as src, open(os.path.join(out, 'lib', os.path.basename(n)), 'wb') as dst: shutil.copyfileobj(src, dst, 1 << 22)",
      "    elif n.startswith(('tensorflow/include/tensorflow/', 'tensorflow/include/xla/', 'tensorflow/include/tsl/')) and not n.endswith('/'):",
      "        dest = os.path.join(out, 'include', n[len('tensorflow/include/'):])",
      '        os.makedirs(os.path.dirname(dest), exist_ok=True)',
      "        with z.open(n) as src, open(dest, 'wb') as dst: shutil.copyfileobj(src, dst)",
    ].join('\n');
    await fs.mkdir(path.join(tmp, 'lib'));
    await fs.mkdir(path.join(tmp, 'include'));
    await runVisible(python, ['-c', unpack, path.join(tmp, wheel), tmp], { log, label: 'native backend', forward: false });
    await fs.rm(path.join(tmp, wheel));
  });
  return dir;
}

/** Lays out deps/lib and deps/include in the tfjs-node package as its installer would. */
async function linkDeps(pkg: string, lib: string): Promise<void> {
  const deps = path.join(pkg, 'deps');
  await fs.rm(deps, { recursive: true, force: true });
  await fs.mkdir(path.join(deps, 'lib'), { recursive: true });
  const link = (target: string, name: string) => fs.symlink(target, path.join(deps, 'lib', name));
  await link(path.join(lib, 'lib', 'libtensorflow_cc.so.2'), 'libtensorflow_cc.so.2');
  await link(path.join(lib, 'lib', 'libtensorflow_framework.so.2'), 'libtensorflow_framework.so.2');
  // The binding links -ltensorflow: the C API lives in libtensorflow_cc in the wheel.
  await link('libtensorflow_cc.so.2', 'libtensorflow.so.2');
  await link('libtensorflow_cc.so.2', 'libtensorflow.so');
  await link('libtensorflow_framework.so.2', 'libtensorflow_framework.so');
  await fs.symlink(path.join(lib, 'include'), path.join(deps, 'include'));
}

function nodeGyp(): string | undefined {
  const candidates = [
    process.env.npm_config_node_gyp,
    path.join(path.dirname(realpathSync(process.execPath)), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ];
  return candidates.find((c): c is string => Boolean(c && existsSync(c)));
}

/** Loads tfjs-node in a fresh process and runs one op on the `tensorflow` backend. */
export function checkNativeBackend(): NativeStatus {
  const probe = "const tf=require('@tensorflow/tfjs-node');const s=tf.add(tf.tensor([1,2]),tf.tensor([3,4])).dataSync();process.stdout.write(tf.getBackend()+' '+Array.from(s).join(','))";
  const res = spawnSync(process.execPath, ['-e', probe], { encoding: 'utf8', env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2' }, cwd: path.join(__dirname, '..', '..') });
  if (res.status === 0 && res.stdout.trim() === 'tensorflow 4,6') return { ok: true, detail: 'tfjs-node loads and computes on the tensorflow backend' };
  const why = (res.stderr || res.stdout).split('\n').find((l) => /Error|error/.test(l)) ?? `exit ${res.status}`;
  return { ok: false, detail: why.trim() };
}

/**
 * One change to tfjs-node's binding source before it is built: the sessions it opens for
 * SavedModels (our graphs, core/compute/graph.ts) get their own thread counts from
 * `SRLM_GRAPH_THREADS`: "N" (N intra-op and N inter-op threads, default 1) or "N,M" (N and M; "0":
 * TensorFlow's defaults). With TF_OVERRIDE_GLOBAL_THREADPOOL=1 (set by compute/backend.ts) each
 * session's CPU device owns an intra-op pool of N; the inter-op threads come from a pool of M
 * shared by name among the sessions that ask for M, since TensorFlow's own inter-op pool is
 * process-wide and sized by whichever session opens first. A decode step is hundreds of small ops,
 * which two intra-op threads can run slower than one, and which two lanes of rows (forward-graph.ts,
 * `stepPlan`) run side by side on two inter-op threads (`node dist/bench/graph.js`), while
 * training's larger ops keep both cores.
 */
export const BINDING_PATCH = {
  id: 'srlm-graph-threads-4',
  anchor: '  TF_SessionOptions *session_options = TF_NewSessionOptions();\n',
  code: [
    '  // srlm: SavedModel sessions (its graphs) get their own thread counts, SRLM_GRAPH_THREADS',
    '  // ("N": N intra-op and inter-op threads, "N,M": N intra-op and M inter-op; default 1; 0: TF\'s own).',
    '  {',
    '    const char *srlm_threads = std::getenv("SRLM_GRAPH_THREADS");',
    '    int srlm_intra = srlm_threads ? std::atoi(srlm_threads) : 1;',
    "    const char *srlm_comma = srlm_threads ? std::strchr(srlm_threads, ',') : nullptr;",
    '    int srlm_inter = srlm_comma ? std::atoi(srlm_comma + 1) : srlm_intra;',
    '    if (srlm_intra > 0 && srlm_intra < 128 && srlm_inter > 0 && srlm_inter < 100) {',
    '      // ConfigProto: intra_op_parallelism_threads (field 2), inter_op_parallelism_threads (field 5)',
    '      // and session_inter_op_thread_pool (field 12): a pool of srlm_inter threads shared by name',
    '      // with the sessions that ask for as many, not the process-wide pool, whose size the first',
    '      // session to open would decide for all.',
    '      char srlm_name[16];',
    '      int srlm_name_len = std::snprintf(srlm_name, sizeof srlm_name, "srlm-inter-%d", srlm_inter);',
    '      unsigned char srlm_config[32] = {0x10, (unsigned char)srlm_intra, 0x28, (unsigned char)srlm_inter,',
    '                                       0x62, (unsigned char)(4 + srlm_name_len), 0x08, (unsigned char)srlm_inter,',
    '                                       0x12, (unsigned char)srlm_name_len};',
    '      std::memcpy(srlm_config + 10, srlm_name, srlm_name_len);',
    '      TF_AutoStatus srlm_status;',
    '      TF_SetConfig(session_options, srlm_config, 10 + srlm_name_len, srlm_status.status);',
    '    }',
    '  }',
    '',
  ].join('\n'),
};

/** A block an earlier version of BINDING_PATCH inserted: its first comment line through its closing brace. */
const EARLIER_PATCH = / {2}\/\/ srlm: SavedModel sessions[^\n]*\n[\s\S]*?\n {2}\}\n/g;

export async function patchBinding(pkg: string, log: Log): Promise<void> {
  const file = path.join(pkg, 'binding', 'tfjs_backend.cc');
  let source = await fs.readFile(file, 'utf8');
  if (source.includes(BINDING_PATCH.code)) return;
  // A source patched by an earlier version (a work tree upgraded in place) gets this block instead, not beside it.
  source = source.replace(EARLIER_PATCH, '');
  if (!source.includes(BINDING_PATCH.anchor)) {
    log('native backend: tfjs-node\'s binding source has changed; graphs will share the eager thread pool');
    return;
  }
  source = source.replace(BINDING_PATCH.anchor, `${BINDING_PATCH.anchor}${BINDING_PATCH.code}`);
  // The block's headers (std::snprintf, std::getenv and std::atoi), once.
  for (const header of ['<cstdio>', '<cstdlib>']) if (!source.includes(`#include ${header}\n`)) source = source.replace('#include <cstring>\n', `#include ${header}\n#include <cstring>\n`);
  await fs.writeFile(file, source);
}

/** Provisions the native backend if it is not already working. Never throws: reports instead. */
export async function ensureNativeBackend(log: Log): Promise<NativeStatus> {
  if (process.env.SRLM_SKIP_NATIVE === '1') return { ok: false, detail: 'skipped (SRLM_SKIP_NATIVE=1)' };
  const pkg = tfjsNodeDir();
  if (!pkg) return { ok: false, detail: '@tensorflow/tfjs-node is not installed (it is an optional dependency)' };
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    return { ok: false, detail: `no pinned TensorFlow C library for ${process.platform}-${process.arch}; using wasm or cpu` };
  }
  const version = JSON.parse(readFileSync(path.join(pkg, 'package.json'), 'utf8')).version as string;
  const key = `tfjs-node-${version}-node${process.versions.modules}-tf${TENSORFLOW_WHEEL.version}-${BINDING_PATCH.id}`;
  const target = path.join(pkg, 'lib', `napi-v${process.versions.napi === undefined ? 8 : Math.min(8, Number(process.versions.napi))}`, 'tfjs_binding.node');
  // The binding in place is ours (same versions, same patch) when its marker says so.
  const marker = `${target}.srlm`;
  if (existsSync(marker) && readFileSync(marker, 'utf8') === key) {
    const already = checkNativeBackend();
    if (already.ok) return already;
  }
  const started = Date.now();
  try {
    const lib = await ensureLibtensorflow(log);
    await linkDeps(pkg, lib);
    const cached = path.join(cacheDir(), 'tfjs-node-binding', key, 'tfjs_binding.node');
    if (existsSync(cached)) {
      await fs.mkdir(path.dirname(target), { recursive: true });
      await fs.copyFile(cached, target);
      log('native backend: reusing the binding built earlier');
    } else {
      const gyp = nodeGyp();
      if (!gyp) throw new Error('node-gyp was not found (it ships with npm); set npm_config_node_gyp');
      log('native backend: building the tfjs-node binding against the TensorFlow C library (about 30 s)');
      await patchBinding(pkg, log);
      const preGyp = require.resolve('@mapbox/node-pre-gyp/bin/node-pre-gyp', { paths: [pkg] });
      await runVisible(process.execPath, [preGyp, 'install', '--build-from-source', `--nodedir=${process.env.npm_config_nodedir ?? path.join(path.dirname(realpathSync(process.execPath)), '..')}`], {
        cwd: pkg,
        env: { ...process.env, npm_config_node_gyp: gyp },
        log,
        label: 'native backend',
        forward: false,
      });
      const built = (await fs.readdir(path.join(pkg, 'lib'), { recursive: true })).map(String).find((f) => f.endsWith('tfjs_binding.node'));
      if (!built) throw new Error('the build produced no tfjs_binding.node');
      await fs.mkdir(path.dirname(cached), { recursive: true });
      await fs.copyFile(path.join(pkg, 'lib', built), cached);
    }
    await fs.writeFile(marker, key);
    const status = checkNativeBackend();
    if (status.ok) log(`native backend: ready in ${Math.round((Date.now() - started) / 1000)} s`);
    return status;
  } catch (err) {
    return { ok: false, detail: (err as Error).message.split('\n').slice(0, 3).join(' ') };
  }
}
