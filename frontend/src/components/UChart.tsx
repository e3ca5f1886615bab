import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export interface UChartProps {
  /** Options without width/height; a change of `optionsKey` rebuilds the chart. */
  options: Omit<uPlot.Options, 'width' | 'height'>;
  optionsKey: string;
  data: uPlot.AlignedData;
  height?: number;
  label: string;
}

/** While the pointer is not over the chart, the legend shows the newest values instead of "--". */
function showLatest(u: uPlot) {
  const n = u.data[0]?.length ?? 0;
  if (n > 0 && (u.cursor.left ?? -1) < 0) u.setLegend({ idx: n - 1 });
}

/** A uPlot chart that follows its container's width and updates data in place. */
export function UChart({ options, optionsKey, data, height = 220, label }: UChartProps) {
  const hostRef = useRef<HTMLDivElement>(null);
  const plotRef = useRef<uPlot | null>(null);
  const dataRef = useRef(data);
  dataRef.current = data;
  const optsRef = useRef(options);
  optsRef.current = options;

  useEffect(() => {
    const host = hostRef.current;
    if (!host) return;
    const width = Math.max(200, host.clientWidth);
    const base = optsRef.current;
    const u = new uPlot(
      {
        ...base,
        width,
        height,
        hooks: { ...base.hooks, setCursor: [...(base.hooks?.setCursor ?? []), (self) => showLatest(self)] },
      },
      dataRef.current,
      host,
    );
    plotRef.current = u;
    let raf = 0;
    const ro = new ResizeObserver(() => {
      cancelAnimationFrame(raf);
      raf = requestAnimationFrame(() => {
        const w = Math.max(200, host.clientWidth);
        if (w !== u.width) u.setSize({ width: w, height });
      });
    });
    ro.observe(host);
    return () => {
      cancelAnimationFrame(raf);
      ro.disconnect();
      u.destroy();
      plotRef.current = null;
    };
  }, [optionsKey, height]);

  useEffect(() => {
    const u = plotRef.current;
    if (!u) return;
    if (u.data !== data) u.setData(data);
    showLatest(u);
  }, [data, optionsKey]);

  return <div className="uchart" ref={hostRef} role="img" aria-label={label} />;
}
