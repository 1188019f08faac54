// Bench settings from the environment: BENCH_X=number, or a comma-separated list of numbers.

export const envNumber = (name: string, dflt: number): number => Number(process.env[name] ?? dflt);

export const envList = (name: string, dflt: number[]): number[] => {
  const v = process.env[name];
  return v ? v.split(',').map(Number) : dflt;
};
