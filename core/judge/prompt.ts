/**
 * The judge prompt: an additive five-point rubric with the structure of the paper's Figure 2 (five
 * cumulative criteria from "relevant at all" to "expert, nothing extraneous", a brief justification,
 * a final `Score: N`), in our own words. Templates are configurable per model; `{instruction}` and
 * `{response}` are the slots.
 */
export const ADDITIVE_JUDGE_TEMPLATE = `Review the user's question and the response below, and score the response with the additive 5-point system described here. Points add up: give each one only if the response earns it.

- Add 1 point if the response is relevant to the question and gives some related information, even if it is incomplete or includes irrelevant content.
- Add a 2nd point if it addresses a substantial part of the question but does not fully answer it.
- Add a 3rd point if it answers the basic elements of the question in a useful way, even if it is not complete or not perfectly written.
- Add a 4th point if it is written from an assistant's point of view, addresses the question directly and comprehensively, and is well organised and helpful, with only small room for improvement in clarity, length or focus.
- Add a 5th point if it is impeccably tailored to the question, with no extraneous content, and reflects expert knowledge in an engaging, insightful answer.

Question: {instruction}

Response: {response}

After examining the question and the response, justify your total briefly, in at most 100 words, then end with the line "Score: <total points>".`;

export function judgePrompt(instruction: string, response: string, template: string = ADDITIVE_JUDGE_TEMPLATE): string {
  if (!template.includes('{instruction}') || !template.includes('{response}')) {
    throw new Error('a judge template needs both {instruction} and {response} slots');
  }
  // One pass over the template, so braces inside the instruction or response are never replaced.
  return template.replace(/\{(instruction|response)\}/g, (_, slot: string) => (slot === 'instruction' ? instruction : response));
}
