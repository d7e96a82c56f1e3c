/** Runs `f` with the native backend's graphs on (as configured) or off (`SRLM_GRAPHS=0`), restoring the setting after. */
export function withGraphs<T>(on: boolean, f: () => Promise<T>): Promise<T> {
  const saved = process.env.SRLM_GRAPHS;
  if (!on) process.env.SRLM_GRAPHS = '0';
  return f().finally(() => {
    if (saved === undefined) delete process.env.SRLM_GRAPHS;
    else process.env.SRLM_GRAPHS = saved;
  });
}
