/**
 * The built-in worlds, registered with the pipeline (`builtin:<name>` in a run config), each loaded
 * on first use. Bump a world's version when its data, base model recipe or oracle change.
 */
import { registerWorld } from '../pipeline/world';

registerWorld('tiny', '1', async () => (await import('./tiny.js')).tinyWorld);
// 2: 180 held-out prompts (was 100).
registerWorld('paths', '2', async () => (await import('./paths.js')).pathsWorld);
