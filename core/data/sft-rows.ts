import { z } from 'zod';

/**
 * A supervised example: an instruction (or a ready prompt) and its response, as text, or as token
 * ids for models without a tokenizer. Alpaca-style `instruction`/`input`/`output` rows are read too.
 */
export const SftTextRow = z.union([
  z.strictObject({ instruction: z.string().min(1), response: z.string().min(1) }),
  z.strictObject({ instruction: z.string().min(1), input: z.string().optional(), output: z.string().min(1) }),
  z.strictObject({ prompt: z.string().min(1), response: z.string().min(1) }),
  z.strictObject({ prompt_ids: z.array(z.number().int().nonnegative()).min(1), response_ids: z.array(z.number().int().nonnegative()).min(1) }),
]);
export type SftTextRow = z.infer<typeof SftTextRow>;
