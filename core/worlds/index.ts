/** The built-in worlds, registered with the pipeline (`builtin:<name>` in a run config). */
import { registerWorld } from '../pipeline/world';
import { pathsWorld } from './paths';
import { tinyWorld } from './tiny';

registerWorld('tiny', async () => tinyWorld);
registerWorld('paths', async () => pathsWorld);
