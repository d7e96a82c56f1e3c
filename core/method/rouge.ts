/**
 * ROUGE-L between short texts, as Self-Instruct uses it to drop near-duplicate prompts: words are
 * lower-cased runs of letters and digits (other characters separate them), and the score is the
 * F-measure (β = 1) of the longest common subsequence of words:
 *   P = LCS / |candidate|, R = LCS / |reference|, F = 2PR / (P + R).
 */

export function rougeTokens(text: string): string[] {
  return text.toLowerCase().split(/[^\p{L}\p{N}]+/u).filter(Boolean);
}

/** Length of the longest common subsequence (two rows of the dynamic programme). */
export function lcsLength(a: ArrayLike<number | string>, b: ArrayLike<number | string>): number {
  if (a.length === 0 || b.length === 0) return 0;
  let prev = new Uint16Array(b.length + 1);
  let curr = new Uint16Array(b.length + 1);
  for (let i = 1; i <= a.length; i++) {
    const ai = a[i - 1];
    for (let j = 1; j <= b.length; j++) curr[j] = ai === b[j - 1] ? prev[j - 1]! + 1 : Math.max(prev[j]!, curr[j - 1]!);
    [prev, curr] = [curr, prev];
  }
  return prev[b.length]!;
}

export function rougeLFromTokens(candidate: ArrayLike<number | string>, reference: ArrayLike<number | string>): number {
  const lcs = lcsLength(candidate, reference);
  if (lcs === 0) return 0;
  const p = lcs / candidate.length;
  const r = lcs / reference.length;
  return (2 * p * r) / (p + r);
}

export function rougeL(candidate: string, reference: string): number {
  return rougeLFromTokens(rougeTokens(candidate), rougeTokens(reference));
}

/**
 * A growing set of texts that answers "is this within `threshold` ROUGE-L F of any member?"
 * quickly: words are interned as integers, and a member is skipped when even a full overlap could
 * not reach the threshold (F ≤ 2·min(n, m)/(n + m)).
 */
export class RougePool {
  private readonly ids = new Map<string, number>();
  private readonly members: Uint32Array[] = [];

  constructor(texts: Iterable<string> = []) {
    for (const t of texts) this.add(t);
  }

  get size(): number {
    return this.members.length;
  }

  private encode(text: string): Uint32Array {
    return Uint32Array.from(rougeTokens(text), (w) => {
      let id = this.ids.get(w);
      if (id === undefined) this.ids.set(w, (id = this.ids.size));
      return id;
    });
  }

  add(text: string): void {
    this.members.push(this.encode(text));
  }

  /** The highest ROUGE-L F against a member that exceeds `threshold`, or null when none does. */
  nearest(text: string, threshold: number): number | null {
    const words = this.encode(text);
    let best: number | null = null;
    for (const m of this.members) {
      const bound = (2 * Math.min(words.length, m.length)) / (words.length + m.length);
      if (!(bound > threshold) || (best !== null && bound <= best)) continue;
      const f = rougeLFromTokens(words, m);
      if (f > threshold && (best === null || f > best)) best = f;
    }
    return best;
  }
}
