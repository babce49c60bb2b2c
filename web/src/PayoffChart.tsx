import { KeyboardEvent, PointerEvent, useState } from "react";
import { ChartLeg, Figures, analyze, payoff, unitOf } from "./payoff";

const W = 600;
const H = 260;
const PAD = { l: 48, r: 16, t: 16, b: 36 };

const fmt = (x: number) => (Math.abs(x) >= 100 ? x.toFixed(0) : Number(x.toFixed(2)).toString());

// describe says in words what the chart shows, for its aria-label.
export function describe(f: Figures): string {
  const gain = f.maxGain === null ? "unbounded" : fmt(f.maxGain);
  const be = f.breakevens.length ? "break-evens at " + f.breakevens.map(fmt).join(" and ") : "no break-even";
  return `Payoff diagram at expiry, per share of one unit: maximum loss ${fmt(f.maxLoss)}, maximum gain ${gain}, ${be}.`;
}

// PayoffChart draws profit and loss at expiry against the underlying's
// price, over a range that shows every strike and break-even, with the
// break-evens, the maximum loss and gain marked and a read-out that
// follows the pointer or the arrow keys.
export function PayoffChart({ legs }: { legs: ChartLeg[] }) {
  const unit = unitOf(legs);
  const f = analyze(legs, unit);
  const marks = [...legs.map((l) => l.strike), ...f.breakevens];
  const lo = Math.min(...marks);
  const hi = Math.max(...marks);
  const pad = Math.max((hi - lo) * 0.35, hi * 0.05, 1);
  const x0 = Math.max(0, lo - pad);
  const x1 = hi + pad;
  const xsAll = [x0, ...legs.map((l) => l.strike), ...f.breakevens, x1].filter((x) => x >= x0 && x <= x1).sort((a, b) => a - b);
  const pts = xsAll.map((x) => [x, payoff(legs, unit, x)] as const);
  const ys = pts.map(([, y]) => y);
  let y0 = Math.min(0, ...ys);
  let y1 = Math.max(0, ...ys);
  if (y1 - y0 < 1e-9) [y0, y1] = [y0 - 1, y1 + 1];
  const yPad = (y1 - y0) * 0.1;
  y0 -= yPad;
  y1 += yPad;
  const sx = (x: number) => PAD.l + ((x - x0) / (x1 - x0)) * (W - PAD.l - PAD.r);
  const sy = (y: number) => PAD.t + ((y1 - y) / (y1 - y0)) * (H - PAD.t - PAD.b);
  const stops = [...new Set([x0, ...legs.map((l) => l.strike), ...f.breakevens, x1])].sort((a, b) => a - b);
  const [at, setAt] = useState<number | null>(null);
  const cursor = at === null ? null : { x: at, y: payoff(legs, unit, at) };

  function onPointer(e: PointerEvent<SVGSVGElement>) {
    const r = e.currentTarget.getBoundingClientRect();
    const px = ((e.clientX - r.left) / r.width) * W;
    const x = x0 + ((px - PAD.l) / (W - PAD.l - PAD.r)) * (x1 - x0);
    setAt(Math.min(x1, Math.max(x0, x)));
  }
  function onKey(e: KeyboardEvent<SVGSVGElement>) {
    if (e.key !== "ArrowLeft" && e.key !== "ArrowRight") return;
    e.preventDefault();
    const i = at === null ? -1 : stops.findIndex((s) => s >= at - 1e-9);
    const next = e.key === "ArrowRight" ? stops[Math.min(stops.length - 1, i + 1)] : stops[Math.max(0, (i < 0 ? stops.length : i) - 1)];
    setAt(next);
  }
  const ticks = [...new Set(legs.map((l) => l.strike))];
  return (
    <figure className="payoff">
      <svg
        role="img"
        aria-label={describe(f)}
        viewBox={`0 0 ${W} ${H}`}
        tabIndex={0}
        onPointerMove={onPointer}
        onPointerLeave={() => setAt(null)}
        onKeyDown={onKey}
        onBlur={() => setAt(null)}
      >
        <line x1={PAD.l} x2={W - PAD.r} y1={sy(0)} y2={sy(0)} className="axis" />
        {ticks.map((s) => (
          <g key={s}>
            <line x1={sx(s)} x2={sx(s)} y1={PAD.t} y2={H - PAD.b} className="strike" />
            <text x={sx(s)} y={H - PAD.b + 14} textAnchor="middle">{fmt(s)}</text>
          </g>
        ))}
        <line x1={PAD.l} x2={W - PAD.r} y1={sy(-f.maxLoss)} y2={sy(-f.maxLoss)} className="loss" />
        <text x={PAD.l + 4} y={sy(-f.maxLoss) - 4}>max loss {fmt(f.maxLoss)}</text>
        {f.maxGain !== null && (
          <>
            <line x1={PAD.l} x2={W - PAD.r} y1={sy(f.maxGain)} y2={sy(f.maxGain)} className="gain" />
            <text x={PAD.l + 4} y={sy(f.maxGain) - 4}>max gain {fmt(f.maxGain)}</text>
          </>
        )}
        <polyline points={pts.map(([x, y]) => `${sx(x)},${sy(y)}`).join(" ")} className="pnl" />
        {f.breakevens.map((b) => (
          <g key={b}>
            <circle cx={sx(b)} cy={sy(0)} r={4} className="be" />
            <text x={sx(b)} y={sy(0) + 16} textAnchor="middle" className="be-label">{fmt(b)}</text>
          </g>
        ))}
        {cursor && <circle cx={sx(cursor.x)} cy={sy(cursor.y)} r={5} className="cursor" />}
        <text x={4} y={PAD.t + 8}>{fmt(y1)}</text>
        <text x={4} y={H - PAD.b}>{fmt(y0)}</text>
      </svg>
      <figcaption>
        {cursor
          ? `At ${fmt(cursor.x)}: ${cursor.y >= 0 ? "profit" : "loss"} ${fmt(Math.abs(cursor.y))} per share`
          : "Profit and loss at expiry per share of one unit. Point at the chart, or focus it and use the arrow keys, to read a price."}
      </figcaption>
    </figure>
  );
}
