// The workflow bundle entry: re-exports only (the worker's workflowsPath must be one module).
export { selfRewardingRun, progressQuery, pauseSignal, resumeSignal, extendIterationsUpdate, retryIterationUpdate } from './run';
export { selfRewardingIteration } from './iteration';
