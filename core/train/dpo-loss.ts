/**
 * The DPO objective (Rafailov et al. 2023) on summed response log-probs, and TRL's metrics.
 *
 * For a pair with policy log-probs (πc, πr) of the chosen and rejected responses and frozen
 * reference log-probs (ρc, ρr): implied rewards rc = β(πc − ρc), rr = β(πr − ρr), margin h = rc − rr.
 *   sigmoid loss: −log σ(h)              (the paper's; label smoothing not used)
 *   IPO loss:     (h/β − 1/(2β))²        (Azar et al. 2023; h/β is the log-ratio difference)
 * Metrics use TRL's names, averaged over the batch.
 *
 * Optionally an NLL term on the chosen responses (RPO / iterative RPO, Pang et al. 2024): the loss
 * adds α · mean(−πc / |c|), the chosen response's negative log-likelihood per token, which keeps DPO
 * from lowering the likelihood of the responses it prefers. Logged as `nll_loss` (TRL's name).
 */
import * as tf from '@tensorflow/tfjs-core';

export type DpoLossType = 'sigmoid' | 'ipo';

export interface DpoMetrics {
  loss: number;
  'rewards/chosen': number;
  'rewards/rejected': number;
  'rewards/accuracies': number;
  'rewards/margins': number;
  'logps/chosen': number;
  'logps/rejected': number;
  /** Mean per-token NLL of the chosen responses; present when an NLL weight is set. */
  nll_loss?: number;
}

/** The NLL term's weight α and each chosen response's token count. */
export interface NllTerm<T> {
  weight: number;
  chosenLengths: T;
}

/** The mean DPO loss over a batch as a scalar tensor (differentiable in the policy log-probs). */
export function dpoLoss(
  policyChosen: tf.Tensor1D, policyRejected: tf.Tensor1D, refChosen: tf.Tensor1D, refRejected: tf.Tensor1D,
  beta: number, type: DpoLossType = 'sigmoid', nll?: NllTerm<tf.Tensor1D>,
): tf.Scalar {
  return tf.tidy(() => {
    const logRatios = tf.sub(tf.sub(policyChosen, refChosen), tf.sub(policyRejected, refRejected));
    // −log σ(x) = softplus(−x), computed stably.
    const dpo = type === 'ipo' ? tf.mean(tf.square(tf.sub(logRatios, 1 / (2 * beta)))) : tf.mean(tf.softplus(tf.neg(tf.mul(logRatios, beta))));
    if (!nll || nll.weight === 0) return dpo as tf.Scalar;
    return tf.add(dpo, tf.mul(nll.weight, tf.mean(tf.div(tf.neg(policyChosen), nll.chosenLengths)))) as tf.Scalar;
  });
}

/** The metrics TRL logs, from plain numbers (host side). */
export function dpoMetrics(
  policyChosen: number[], policyRejected: number[], refChosen: number[], refRejected: number[],
  beta: number, type: DpoLossType = 'sigmoid', nll?: NllTerm<number[]>,
): DpoMetrics {
  const n = policyChosen.length;
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / n;
  const rc = policyChosen.map((p, i) => beta * (p - refChosen[i]!));
  const rr = policyRejected.map((p, i) => beta * (p - refRejected[i]!));
  const margins = rc.map((c, i) => c - rr[i]!);
  const softplus = (x: number) => (x > 30 ? x : Math.log1p(Math.exp(x)));
  const losses = margins.map((h) => (type === 'ipo' ? (h / beta - 1 / (2 * beta)) ** 2 : softplus(-h)));
  const nllLoss = nll && nll.weight !== 0 ? mean(policyChosen.map((p, i) => -p / nll.chosenLengths[i]!)) : undefined;
  return {
    loss: mean(losses) + (nllLoss === undefined ? 0 : nll!.weight * nllLoss),
    'rewards/chosen': mean(rc),
    'rewards/rejected': mean(rr),
    'rewards/accuracies': mean(margins.map((h) => (h > 0 ? 1 : 0))),
    'rewards/margins': mean(margins),
    'logps/chosen': mean(policyChosen),
    'logps/rejected': mean(policyRejected),
    ...(nllLoss === undefined ? {} : { nll_loss: nllLoss }),
  };
}
