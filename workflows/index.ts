// The workflow bundle entry: re-exports only (the worker's workflowsPath must be one module).
export { selfRewardingRun, progressQuery } from './run';
