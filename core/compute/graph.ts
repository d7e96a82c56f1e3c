/**
 * TensorFlow graphs built here, run as one session call on the native backend.
 *
 * On tfjs-node every eager op is one trip through N-API and TFE_Execute, so a small model's decode
 * step, a few hundred ops, costs more in dispatch than in arithmetic. A graph of the same ops runs
 * in one `TF_SessionRun` (`node dist/bench/graph.js` times 150 elementwise ops both ways).
 *
 * tfjs-node can run graphs only as SavedModels, so `GraphBuilder` writes the GraphDef (with
 * tfjs-node's own protobuf classes) into a `saved_model.pb` with one signature, and `GraphFunction`
 * loads it from a temporary directory (removed once loaded) and runs it. The graphs take every
 * weight as an input: one graph serves every model of a shape, and weights never go stale.
 *
 * Only the native backends (`tensorflow`, `tensorflow-gpu`) can run graphs; `graphsAvailable()`
 * says whether this process can, and callers keep an eager path for the others.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';

export type GraphDType = 'float32' | 'int32';
type AttrType = GraphDType | 'bool';
/** An op's output: `name` (output 0) or `name:i`. */
export type Ref = string;

export type Attr =
  | { type: AttrType }
  | { int: number }
  | { bool: boolean }
  | { types: AttrType[] }
  | { func: string };

/* eslint-disable @typescript-eslint/no-explicit-any -- tfjs-node's generated protobuf classes are untyped */
type Proto = any;

interface NativeNode {
  loadSavedModel(dir: string, tags: string[], signature: string): Promise<SavedModelSession>;
}
interface SavedModelSession {
  predict(inputs: Record<string, tf.Tensor>): Record<string, tf.Tensor> | tf.Tensor;
  dispose(): void;
}

let native: { node: NativeNode; proto: Proto } | null | undefined;
let loading: Promise<unknown> = Promise.resolve();

/** tfjs-node's graph loader and protobuf classes, when the active backend is a native one. */
function nativeApi(): { node: NativeNode; proto: Proto } | null {
  if (tf.getBackend() !== 'tensorflow') return null;
  if (native !== undefined) return native;
  native = null;
  for (const pkg of ['@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu']) {
    try {
      // Already loaded by the backend choice (see compute/backend.ts); require returns the same module.
      const dir = path.dirname(require.resolve(`${pkg}/package.json`));
      if (!require.cache[require.resolve(pkg)]) continue;
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- optional native package, already loaded
      const mod = require(pkg) as { node: NativeNode };
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- tfjs-node's generated SavedModel protobuf classes
      const proto = require(path.join(dir, 'dist', 'proto', 'api_pb.js')) as Proto;
      native = { node: mod.node, proto };
      break;
    } catch {
      // not this package
    }
  }
  return native;
}

/** Whether graphs can run here: the native backend is active (SRLM_GRAPHS=0 turns them off). */
export function graphsAvailable(): boolean {
  if (process.env.SRLM_GRAPHS === '0') return false;
  return nativeApi() !== null;
}

/**
 * Runs `f` with graphs on (as configured) or off (as `SRLM_GRAPHS=0`), restoring the setting after:
 * for comparing the two paths in one process (tests, benchmarks).
 */
export function withGraphs<T>(on: boolean, f: () => Promise<T>): Promise<T> {
  const saved = process.env.SRLM_GRAPHS;
  if (!on) process.env.SRLM_GRAPHS = '0';
  return f().finally(() => {
    if (saved === undefined) delete process.env.SRLM_GRAPHS;
    else process.env.SRLM_GRAPHS = saved;
  });
}

interface NodeSpec {
  name: string;
  op: string;
  inputs: Ref[];
  attrs: Record<string, Attr | { tensor: { dtype: GraphDType; shape: number[]; values: number[] } }>;
}

/**
 * Each op's output argument as a function body names it (`node:arg:index`; a graph says
 * `node:index`): the ops used inside functions (see `GraphBuilder.defineFunction`).
 */
const OUTPUT_ARG: Record<string, string> = {
  Const: 'output', MatMul: 'product', BatchMatMulV2: 'output', AddV2: 'z', Sub: 'z', Mul: 'z',
  Square: 'y', Rsqrt: 'y', Sigmoid: 'y', Tanh: 'y', Neg: 'y', Softmax: 'softmax', LogSoftmax: 'logsoftmax',
  Reshape: 'output', Transpose: 'y', Mean: 'output', Sum: 'output', SplitV: 'output', ConcatV2: 'output',
  Abs: 'y', Exp: 'y', Log: 'y', Reciprocal: 'y',
};

interface FunctionSpec {
  name: string;
  args: [string, GraphDType][];
  nodes: NodeSpec[];
  output: { name: string; ref: Ref; dtype: GraphDType };
}

/** A GraphDef under construction: placeholders, constants and ops, named uniquely. */
export class GraphBuilder {
  private readonly nodes: NodeSpec[] = [];
  private readonly names = new Set<string>();
  private readonly inputs = new Map<string, GraphDType>();
  private readonly functions: FunctionSpec[] = [];
  private counter = 0;

  /**
   * Defines a function for `symbolicGradient`: `body` builds it on a builder whose inputs
   * are the function's arguments (in order) and returns its one output. Only ops in OUTPUT_ARG.
   */
  defineFunction(name: string, body: (f: GraphBuilder) => { ref: Ref; dtype: GraphDType }): { args: [string, GraphDType][] } {
    const f = new GraphBuilder();
    const output = body(f);
    const unknown = f.nodes.filter((n) => n.op !== 'Placeholder' && !OUTPUT_ARG[n.op]).map((n) => n.op);
    if (unknown.length) throw new Error(`function ${name}: no output name known for ${[...new Set(unknown)].join(', ')}`);
    const args = [...f.inputs];
    this.functions.push({ name, args, nodes: f.nodes.filter((n) => n.op !== 'Placeholder'), output: { name: 'out', ...output } });
    return { args };
  }

  /**
   * The gradient of a function's output with respect to each of its inputs, `dy` times
   * (TensorFlow's SymbolicGradient, differentiated by libtensorflow's registered function
   * gradients); one ref per input, in order.
   */
  symbolicGradient(fn: string, args: [string, GraphDType][], inputs: Ref[], dy: Ref): Ref[] {
    const types = args.map(([, t]) => t);
    const node = this.op('SymbolicGradient', [...inputs, dy], { Tin: { types: [...types, 'float32'] }, Tout: { types }, f: { func: fn } }, 'grad');
    return types.map((_, i) => (i === 0 ? node : `${node}:${i}`));
  }

  private unique(base: string): string {
    let name = base;
    while (this.names.has(name)) name = `${base}_${++this.counter}`;
    this.names.add(name);
    return name;
  }

  /** A placeholder fed by name. */
  input(name: string, dtype: GraphDType): Ref {
    if (this.names.has(name)) throw new Error(`graph input ${name} is defined twice`);
    this.names.add(name);
    this.inputs.set(name, dtype);
    this.nodes.push({ name, op: 'Placeholder', inputs: [], attrs: { dtype: { type: dtype } } });
    return name;
  }

  op(op: string, inputs: Ref[], attrs: NodeSpec['attrs'] = {}, name = op): Ref {
    const unique = this.unique(name);
    this.nodes.push({ name: unique, op, inputs, attrs });
    return unique;
  }

  /** A constant (int32 for shapes and axes, float32 for scalars). */
  constant(values: number | number[], dtype: GraphDType = 'int32'): Ref {
    const shape = Array.isArray(values) ? [values.length] : [];
    const list = Array.isArray(values) ? values : [values];
    return this.op('Const', [], { dtype: { type: dtype }, value: { tensor: { dtype, shape, values: list } } }, 'c');
  }

  // The ops the decoders use, float32 unless said otherwise.
  matMul(a: Ref, b: Ref, transposeA = false, transposeB = false): Ref {
    return this.op('MatMul', [a, b], { T: { type: 'float32' }, transpose_a: { bool: transposeA }, transpose_b: { bool: transposeB } });
  }
  /**
   * BatchMatMulV3, not V2: with oneDNN on (libtensorflow's default on x86), V2 is rewritten to a
   * oneDNN kernel that is slower on small shapes (`node dist/bench/graph.js` compares them).
   */
  batchMatMul(a: Ref, b: Ref, adjX = false, adjY = false): Ref {
    const f = { type: 'float32' } as const;
    return this.op('BatchMatMulV3', [a, b], { Ta: f, Tb: f, Tout: f, adj_x: { bool: adjX }, adj_y: { bool: adjY } });
  }
  binary(op: 'AddV2' | 'Mul' | 'Sub', a: Ref, b: Ref): Ref {
    return this.op(op, [a, b], { T: { type: 'float32' } });
  }
  /** An op of one float32 input and a `T` attribute (Square, Rsqrt, Sigmoid, Softmax, Neg, Tanh, …). */
  unary(op: string, x: Ref): Ref {
    return this.op(op, [x], { T: { type: 'float32' } });
  }
  reshape(x: Ref, shape: number[], dtype: GraphDType = 'float32'): Ref {
    return this.op('Reshape', [x, this.constant(shape)], { T: { type: dtype }, Tshape: { type: 'int32' } });
  }
  gather(table: Ref, indices: Ref, dtype: GraphDType = 'float32'): Ref {
    return this.op('GatherV2', [table, indices, this.constant(0)], { Tparams: { type: dtype }, Tindices: { type: 'int32' }, Taxis: { type: 'int32' }, batch_dims: { int: 0 } });
  }
  concat(values: Ref[], axis: number, dtype: GraphDType = 'float32'): Ref {
    return this.op('ConcatV2', [...values, this.constant(axis)], { T: { type: dtype }, N: { int: values.length }, Tidx: { type: 'int32' } });
  }
  /** Splits `x` along `axis` into pieces of these sizes; returns one ref per piece. */
  split(x: Ref, sizes: number[], axis: number): Ref[] {
    return this.splitBy(x, this.constant(sizes), sizes.length, axis);
  }
  /** Splits `x` along `axis` into `count` pieces of the sizes in the int32 vector `sizes` (one may be -1: the rest). */
  splitBy(x: Ref, sizes: Ref, count: number, axis: number, dtype: GraphDType = 'float32'): Ref[] {
    const node = this.op('SplitV', [x, sizes, this.constant(axis)], { T: { type: dtype }, Tlen: { type: 'int32' }, num_split: { int: count } });
    return Array.from({ length: count }, (_, i) => (i === 0 ? node : `${node}:${i}`));
  }
  argMax(x: Ref, axis: number): Ref {
    return this.op('ArgMax', [x, this.constant(axis)], { T: { type: 'float32' }, Tidx: { type: 'int32' }, output_type: { type: 'int32' } });
  }
  transpose(x: Ref, perm: number[]): Ref {
    return this.op('Transpose', [x, this.constant(perm)], { T: { type: 'float32' }, Tperm: { type: 'int32' } });
  }
  /** Dimension `axis` of `x`'s shape as an int32 vector of one element. */
  dim(x: Ref, axis: number, dtype: GraphDType = 'float32'): Ref {
    const shape = this.op('Shape', [x], { T: { type: dtype }, out_type: { type: 'int32' } });
    return this.op('Slice', [shape, this.constant([axis]), this.constant([1])], { T: { type: 'int32' }, Index: { type: 'int32' } });
  }
  /** An int32 shape vector from fixed sizes and one-element vectors computed in the graph. */
  shape(parts: (number | Ref)[]): Ref {
    const pieces: Ref[] = [];
    let fixed: number[] = [];
    for (const p of parts) {
      if (typeof p === 'number') fixed.push(p);
      else {
        if (fixed.length) pieces.push(this.constant(fixed));
        fixed = [];
        pieces.push(p);
      }
    }
    if (fixed.length) pieces.push(this.constant(fixed));
    if (pieces.length === 1) return pieces[0]!;
    return this.op('ConcatV2', [...pieces, this.constant(0)], { T: { type: 'int32' }, N: { int: pieces.length }, Tidx: { type: 'int32' } });
  }
  /** Reshape to a shape vector made by `shape()`. */
  reshapeTo(x: Ref, shape: Ref, dtype: GraphDType = 'float32'): Ref {
    return this.op('Reshape', [x, shape], { T: { type: dtype }, Tshape: { type: 'int32' } });
  }
  slice(x: Ref, begin: Ref, size: Ref, dtype: GraphDType = 'float32'): Ref {
    return this.op('Slice', [x, begin, size], { T: { type: dtype }, Index: { type: 'int32' } });
  }
  intOp(op: 'AddV2' | 'Sub' | 'FloorDiv', a: Ref, b: Ref): Ref {
    return this.op(op, [a, b], { T: { type: 'int32' } });
  }
  /** A one-element int32 vector as a scalar. */
  scalar(x: Ref): Ref {
    return this.op('Reshape', [x, this.constant([])], { T: { type: 'int32' }, Tshape: { type: 'int32' } });
  }
  range(start: Ref, limit: Ref): Ref {
    return this.op('Range', [start, limit, this.constant(1)], { Tidx: { type: 'int32' } });
  }
  cast(x: Ref, from: GraphDType | 'bool', to: GraphDType): Ref {
    return this.op('Cast', [x], { SrcT: { type: from }, DstT: { type: to }, Truncate: { bool: false } });
  }

  /** The serialized SavedModel (`saved_model.pb`) with one `serving_default` signature. */
  savedModel(outputs: Record<string, { ref: Ref; dtype: GraphDType }>): Uint8Array {
    const api = nativeApi();
    if (!api) throw new Error('graphs need the native TensorFlow backend');
    const M = api.proto;
    const DT: Record<AttrType, number> = { float32: M.DataType.DT_FLOAT, int32: M.DataType.DT_INT32, bool: M.DataType.DT_BOOL };
    const graph = new M.GraphDef();
    const versions = new M.VersionDef();
    versions.setProducer(1882); // a GraphDef version every libtensorflow 2.x reads
    graph.setVersions(versions);
    const attrValue = (value: NodeSpec['attrs'][string]) => {
      const a = new M.AttrValue();
      if ('type' in value) a.setType(DT[value.type]);
      else if ('int' in value) a.setI(value.int);
      else if ('bool' in value) a.setB(value.bool);
      else if ('types' in value) {
        const list = new M.AttrValue.ListValue();
        for (const t of value.types) list.addType(DT[t]);
        a.setList(list);
      } else if ('func' in value) {
        const f = new M.NameAttrList();
        f.setName(value.func);
        a.setFunc(f);
      } else {
        const t = new M.Tensor();
        t.setDtype(DT[value.tensor.dtype]);
        const shape = new M.TensorShape();
        for (const d of value.tensor.shape) shape.addDim().setSize(d);
        t.setTensorShape(shape);
        if (value.tensor.dtype === 'int32') t.setIntValList(value.tensor.values);
        else t.setFloatValList(value.tensor.values);
        a.setTensor(t);
      }
      return a;
    };
    const write = (node: Proto, spec: NodeSpec, input: (ref: Ref) => string) => {
      node.setName(spec.name);
      node.setOp(spec.op);
      for (const i of spec.inputs) node.addInput(input(i));
      const attrs = node.getAttrMap();
      for (const [key, value] of Object.entries(spec.attrs)) attrs.set(key, attrValue(value));
    };
    for (const spec of this.nodes) write(graph.addNode(), spec, (ref) => ref);
    if (this.functions.length) {
      const library = new M.FunctionDefLibrary();
      for (const fn of this.functions) {
        const def = library.addFunction();
        const signature = new M.OpDef();
        signature.setName(fn.name);
        const arg = (name: string, dtype: GraphDType) => {
          const a = new M.OpDef.ArgDef();
          a.setName(name);
          a.setType(DT[dtype]);
          return a;
        };
        for (const [name, dtype] of fn.args) signature.addInputArg(arg(name, dtype));
        signature.addOutputArg(arg(fn.output.name, fn.output.dtype));
        def.setSignature(signature);
        const ops = new Map(fn.nodes.map((n) => [n.name, n.op]));
        // An argument by its name; an op's output as node:arg:index.
        const input = (ref: Ref) => {
          const [node, index = '0'] = ref.split(':');
          const op = ops.get(node!);
          return op ? `${node}:${OUTPUT_ARG[op]}:${index}` : ref;
        };
        for (const spec of fn.nodes) write(def.addNodeDef(), spec, input);
        def.getRetMap().set(fn.output.name, input(fn.output.ref));
      }
      graph.setLibrary(library);
    }
    const info = (ref: Ref, dtype: GraphDType) => {
      const t = new M.TensorInfo();
      t.setName(ref.includes(':') ? ref : `${ref}:0`);
      t.setDtype(DT[dtype]);
      const shape = new M.TensorShape();
      shape.setUnknownRank(true);
      t.setTensorShape(shape);
      return t;
    };
    const signature = new M.SignatureDef();
    signature.setMethodName('tensorflow/serving/predict');
    for (const [name, dtype] of this.inputs) signature.getInputsMap().set(name, info(name, dtype));
    for (const [name, o] of Object.entries(outputs)) signature.getOutputsMap().set(name, info(o.ref, o.dtype));
    const meta = new M.MetaGraphDef();
    const metaInfo = new M.MetaGraphDef.MetaInfoDef();
    metaInfo.addTags('serve');
    meta.setMetaInfoDef(metaInfo);
    meta.setGraphDef(graph);
    meta.getSignatureDefMap().set('serving_default', signature);
    const saved = new M.SavedModel();
    saved.setSavedModelSchemaVersion(1);
    saved.addMetaGraphs(meta);
    return saved.serializeBinary() as Uint8Array;
  }

  /**
   * Loads the graph as a session on the native backend, with `threads` intra-op and inter-op
   * threads, or [intra-op, inter-op] (0: libtensorflow's default, one per core). The counts take
   * effect where the binding carries srlm's patch (infra/native-backend.ts), which reads them when
   * the session opens.
   */
  compile(outputs: Record<string, { ref: Ref; dtype: GraphDType }>, threads: GraphThreads = 0): Promise<GraphFunction> {
    const api = nativeApi();
    if (!api) return Promise.reject(new Error('graphs need the native TensorFlow backend'));
    const bytes = this.savedModel(outputs);
    // One load at a time: the thread count travels in the environment while a session opens.
    const load = loading.then(async () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'srlm-graph-'));
      const saved = process.env.SRLM_GRAPH_THREADS;
      try {
        writeFileSync(path.join(dir, 'saved_model.pb'), bytes);
        process.env.SRLM_GRAPH_THREADS = typeof threads === 'number' ? String(threads) : threads.join(',');
        const session = await api.node.loadSavedModel(dir, ['serve'], 'serving_default');
        return new GraphFunction(session, [...this.inputs.keys()], Object.keys(outputs));
      } finally {
        if (saved === undefined) delete process.env.SRLM_GRAPH_THREADS;
        else process.env.SRLM_GRAPH_THREADS = saved;
        rmSync(dir, { recursive: true, force: true });
      }
    });
    loading = load.catch(() => undefined);
    return load;
  }
}

/** Threads for a graph session: one count for intra-op and inter-op pools (0: the default), or [intra, inter]. */
export type GraphThreads = number | readonly [number, number];

/** A loaded graph: named inputs in, named outputs out (new tensors the caller disposes). */
export class GraphFunction {
  constructor(
    private readonly session: SavedModelSession,
    readonly inputNames: string[],
    readonly outputNames: string[],
  ) {}

  run(inputs: Record<string, tf.Tensor>): Record<string, tf.Tensor> {
    const missing = this.inputNames.filter((n) => !inputs[n]);
    if (missing.length) throw new Error(`graph inputs missing: ${missing.join(', ')}`);
    const out = this.session.predict(inputs);
    // One output comes back bare.
    return out instanceof tf.Tensor ? { [this.outputNames[0]!]: out } : out;
  }

  dispose(): void {
    this.session.dispose();
  }
}
