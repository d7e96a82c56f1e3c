/**
 * Learning rate at an optimizer step: linear warmup from 0 to the peak, then cosine or linear
 * decay to `lrEnd` at the last step (the paper: 5.5e-6 → 1.1e-6 for SFT, 1e-6 → 1e-7 for DPO).
 */
export interface ScheduleSettings {
  lr: number;
  lrEnd: number;
  schedule: 'cosine' | 'linear' | 'constant';
  warmupSteps: number;
}

export function learningRate(s: ScheduleSettings, step: number, totalSteps: number): number {
  if (s.warmupSteps > 0 && step < s.warmupSteps) return (s.lr * (step + 1)) / s.warmupSteps;
  if (s.schedule === 'constant') return s.lr;
  const span = Math.max(1, totalSteps - s.warmupSteps - 1);
  const progress = Math.min(1, Math.max(0, (step - s.warmupSteps) / span));
  const shape = s.schedule === 'cosine' ? 0.5 * (1 + Math.cos(Math.PI * progress)) : 1 - progress;
  return s.lrEnd + (s.lr - s.lrEnd) * shape;
}
