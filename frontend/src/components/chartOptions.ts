import uPlot from 'uplot';

export const COLORS = {
  accent: '#7c8cff',
  cyan: '#36c5f0',
  green: '#3ecf8e',
  amber: '#f5b942',
  red: '#ff5d6c',
  violet: '#b38cff',
  grid: 'rgba(255,255,255,0.06)',
  axis: '#8a93a6',
};

const font = '11px ui-sans-serif, system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';

export function axis(extra: Partial<uPlot.Axis> = {}): uPlot.Axis {
  return {
    stroke: COLORS.axis,
    font,
    grid: { stroke: COLORS.grid, width: 1 },
    ticks: { stroke: COLORS.grid, width: 1, size: 4 },
    ...extra,
  };
}

function fill(hex: string, alpha: number): string {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255},${(n >> 8) & 255},${n & 255},${alpha})`;
}

export function lineSeries(label: string, color: string, opts: Partial<uPlot.Series> = {}): uPlot.Series {
  return { label, stroke: color, width: 2, fill: fill(color, 0.08), points: { show: false }, spanGaps: false, ...opts };
}

const barsPath = uPlot.paths.bars!;

export function barSeries(label: string, color: string, align: -1 | 0 | 1 = 0, size = 0.6, opts: Partial<uPlot.Series> = {}): uPlot.Series {
  return {
    label,
    stroke: color,
    fill: fill(color, 0.55),
    width: 1,
    paths: barsPath({ size: [size, 48, 2], align, radius: 0.15 }),
    points: { show: false },
    ...opts,
  };
}

const compact = new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 1 });
export const fmtCompact = (v: number | null | undefined) => (v == null ? '—' : compact.format(v));

/** Time-series chart (x in seconds since epoch). */
export function timeOptions(series: uPlot.Series[], yLabel: string, yFmt: (v: number) => string): Omit<uPlot.Options, 'width' | 'height'> {
  return {
    series: [{ label: 'time', value: (_u, v) => (v == null ? '—' : new Date(v * 1000).toLocaleTimeString()) }, ...series],
    // at least a minute of x range, so the axis shows clock times rather than milliseconds
    scales: { x: { time: true, range: (_u, min, max) => [Math.min(min, max - 60), max] }, y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.15 : 1] } },
    axes: [axis(), axis({ label: yLabel, labelFont: font, labelSize: 16, size: 52, values: (_u, splits) => splits.map(yFmt) })],
    cursor: { drag: { x: false, y: false }, points: { size: 6 } },
    legend: { live: true },
  };
}

/** Categorical bar chart: x = 0..n-1, labelled by `labels()` (read at draw time). */
export function categoryOptions(
  series: uPlot.Series[],
  labels: () => string[],
  opts: { secondScale?: string; yLabel?: string; y2Label?: string; xLabel?: string } = {},
): Omit<uPlot.Options, 'width' | 'height'> {
  const name = (i: number) => labels()[i] ?? '';
  const short = (s: string) => (s.length > 12 ? s.slice(0, 11) + '…' : s);
  const axes: uPlot.Axis[] = [
    axis({
      grid: { show: false },
      splits: () => labels().map((_, i) => i),
      values: (_u, splits) => splits.map((i) => short(name(i))),
      rotate: 0,
    }),
    axis({ scale: 'y', label: opts.yLabel, labelFont: font, labelSize: opts.yLabel ? 16 : 0, size: 50, values: (_u, s) => s.map((v) => fmtCompact(v)) }),
  ];
  const scales: uPlot.Scales = {
    x: { time: false, range: () => [-0.5, Math.max(0, labels().length - 1) + 0.5] },
    y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.15 : 1] },
  };
  if (opts.secondScale) {
    scales[opts.secondScale] = { range: (_u, _min, max) => [0, max > 0 ? max * 1.15 : 1] };
    axes.push(
      axis({
        scale: opts.secondScale,
        side: 1,
        grid: { show: false },
        label: opts.y2Label,
        labelFont: font,
        labelSize: opts.y2Label ? 16 : 0,
        size: 50,
        values: (_u, s) => s.map((v) => fmtCompact(v)),
      }),
    );
  }
  return {
    series: [{ label: opts.xLabel ?? 'x', value: (_u, v) => (v == null ? '—' : name(v)) }, ...series],
    scales,
    axes,
    cursor: { drag: { x: false, y: false }, points: { show: false } },
    legend: { live: true },
  };
}
