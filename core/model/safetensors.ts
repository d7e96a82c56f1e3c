/**
 * The safetensors format (what `save_pretrained` writes): an 8-byte little-endian header length,
 * a JSON header `{name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?}`, then the raw
 * little-endian tensor bytes. Reads F32, F16 and BF16 (returned as float32); writes F32 or BF16.
 */
import { InvalidInputError } from '../errors';

export type SafeDtype = 'F32' | 'F16' | 'BF16';

export interface NamedTensor {
  shape: number[];
  /** Always float32 in memory, whatever the stored dtype. */
  data: Float32Array;
  dtype: SafeDtype;
}

const BYTES: Record<SafeDtype, number> = { F32: 4, F16: 2, BF16: 2 };

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * 2 ** -14 * (frac / 1024);
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * 2 ** (exp - 15) * (1 + frac / 1024);
}

/** Parses a safetensors file; `source` names it in errors. */
export function readSafetensors(buf: Buffer, source: string): { tensors: Map<string, NamedTensor>; metadata: Record<string, string> } {
  const fail = (why: string): never => {
    throw new InvalidInputError(`${source}: not a valid safetensors file: ${why}`);
  };
  if (buf.length < 8) fail('shorter than its 8-byte header length');
  const headerLen = Number(buf.readBigUInt64LE(0));
  if (headerLen > buf.length - 8 || headerLen > 100 * 1024 * 1024) fail(`header length ${headerLen} exceeds the file`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(buf.subarray(8, 8 + headerLen).toString('utf8'));
  } catch (err) {
    return fail(`header is not JSON (${(err as Error).message})`);
  }
  const dataStart = 8 + headerLen;
  const tensors = new Map<string, NamedTensor>();
  let metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = value as Record<string, string>;
      continue;
    }
    const info = value as { dtype?: string; shape?: number[]; data_offsets?: [number, number] };
    const dtype = info.dtype as SafeDtype;
    if (!(dtype in BYTES)) fail(`tensor ${name} has dtype ${info.dtype}; supported: F32, F16, BF16`);
    const shape = info.shape ?? [];
    const [begin, end] = info.data_offsets ?? [NaN, NaN];
    const count = shape.reduce((a, b) => a * b, 1);
    if (!(end - begin === count * BYTES[dtype]) || begin < 0 || dataStart + end > buf.length) {
      fail(`tensor ${name}: data_offsets [${begin}, ${end}] do not fit shape [${shape}] of ${dtype} in the file`);
    }
    const bytes = buf.subarray(dataStart + begin, dataStart + end);
    const data = new Float32Array(count);
    if (dtype === 'F32') {
      // Aligned data (the usual case) is copied in one go; x86 and ARM are little-endian like the file.
      if (bytes.byteOffset % 4 === 0) data.set(new Float32Array(bytes.buffer, bytes.byteOffset, count));
      else for (let i = 0; i < count; i++) data[i] = bytes.readFloatLE(i * 4);
    } else if (dtype === 'BF16') {
      // bfloat16 is the top half of a float32.
      const u32 = new Uint32Array(data.buffer);
      for (let i = 0; i < count; i++) u32[i] = bytes.readUInt16LE(i * 2) << 16;
    } else {
      for (let i = 0; i < count; i++) data[i] = halfToFloat(bytes.readUInt16LE(i * 2));
    }
    tensors.set(name, { shape, data, dtype });
  }
  return { tensors, metadata };
}

/** float32 → bfloat16 bits, rounding to nearest even (as torch does). */
function floatToBf16(value: number, scratch: Float32Array, bits: Uint32Array): number {
  scratch[0] = value;
  const x = bits[0]!;
  if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) return (x >>> 16) | 0x40; // keep NaN a NaN
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Serialises tensors in name order (as transformers does), in F32 or BF16. */
export function writeSafetensors(tensors: Map<string, { shape: number[]; data: Float32Array }>, dtype: 'F32' | 'BF16', metadata: Record<string, string> = { format: 'pt' }): Buffer {
  const names = [...tensors.keys()].sort();
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const name of names) {
    const t = tensors.get(name)!;
    const size = t.data.length * BYTES[dtype];
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + size] };
    offset += size;
  }
  let headerText = JSON.stringify(header);
  headerText += ' '.repeat((8 - ((8 + Buffer.byteLength(headerText)) % 8)) % 8); // align the data to 8 bytes
  const headerBytes = Buffer.from(headerText, 'utf8');
  const out = Buffer.alloc(8 + headerBytes.length + offset);
  out.writeBigUInt64LE(BigInt(headerBytes.length), 0);
  headerBytes.copy(out, 8);
  let pos = 8 + headerBytes.length;
  const scratch = new Float32Array(1);
  const bits = new Uint32Array(scratch.buffer);
  for (const name of names) {
    const { data } = tensors.get(name)!;
    if (dtype === 'F32') {
      Buffer.from(data.buffer, data.byteOffset, data.byteLength).copy(out, pos);
      pos += data.byteLength;
    } else {
      for (let i = 0; i < data.length; i++, pos += 2) out.writeUInt16LE(floatToBf16(data[i]!, scratch, bits), pos);
    }
  }
  return out;
}
