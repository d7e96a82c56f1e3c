import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/**
 * The custom search attributes a run sets, so runs can be found and filtered in the Web UI
 * (e.g. `SrlmStage = "dpo"`). The dev server allows few custom attributes; Keyword, Int and Double
 * are enough. infra/ registers them on every server start.
 */
export const SrlmRunId = defineSearchAttributeKey('SrlmRunId', SearchAttributeType.KEYWORD);
export const SrlmIteration = defineSearchAttributeKey('SrlmIteration', SearchAttributeType.INT);
export const SrlmStage = defineSearchAttributeKey('SrlmStage', SearchAttributeType.KEYWORD);
export const SrlmLatestWinRate = defineSearchAttributeKey('SrlmLatestWinRate', SearchAttributeType.DOUBLE);

export const SEARCH_ATTRIBUTES = [SrlmRunId, SrlmIteration, SrlmStage, SrlmLatestWinRate] as const;
