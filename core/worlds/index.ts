/**
 * The built-in worlds, registered with the pipeline (`builtin:<name>` in a run config), each loaded
 * on first use. Bump a world's version when its data, base model recipe or oracle change.
 */
import { registerWorld } from '../pipeline/world';

registerWorld('tiny', '1', async () => (await import('./tiny.js')).tinyWorld);
// 2: 180 held-out prompts (was 100).
// 3: IFT teaches a quarter of the routes (was 0.4), in five of eight phrasings; the iterations' six
//    phrasings leave them 1,850-1,970 prompts; M0's positions 192 (the longest EFT row is 143 tokens).
registerWorld('paths', '3', async () => (await import('./paths.js')).pathsWorld);
