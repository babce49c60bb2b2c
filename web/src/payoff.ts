// The payoff at expiry of a portfolio, computed in the browser so the
// chart follows the legs as they are edited. It follows the server's rules
// (internal/evaluate: Payoff, analyze, the merge of equal legs and the
// strategy's unit) step for step; the browser tests check its figures
// against the server's answer for every preset.

export type ChartLeg = { side: string; right: string; strike: number; quantity: number; premium: number };

export type Figures = { maxLoss: number; maxGain: number | null; breakevens: number[] };

const eps = 1e-9;

const round = (x: number) => Math.round(x * 1e6) / 1e6;

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

// merge folds legs of the same side, right and strike together (quantity
// summed, premium averaged by quantity), as the server does.
export function merge(legs: ChartLeg[]): ChartLeg[] {
  const out: ChartLeg[] = [];
  for (const l of legs) {
    const m = out.find((x) => x.side === l.side && x.right === l.right && x.strike === l.strike);
    if (m) {
      const total = m.quantity + l.quantity;
      m.premium = (m.premium * m.quantity + l.premium * l.quantity) / total;
      m.quantity = total;
    } else {
      out.push({ ...l });
    }
  }
  return out;
}

// unitOf is the strategy's unit: for every allowed strategy, the greatest
// common divisor of its quantities (a butterfly's 1:2:1 is one unit).
export function unitOf(legs: ChartLeg[]): number {
  return legs.reduce((g, l) => gcd(g, l.quantity), 0) || 1;
}

// payoff is the value at expiry per share of one unit when the underlying
// is at s, premiums included.
export function payoff(legs: ChartLeg[], unit: number, s: number): number {
  let v = 0;
  for (const l of legs) {
    let x = (l.right === "put" ? Math.max(l.strike - s, 0) : Math.max(s - l.strike, 0)) - l.premium;
    if (l.side === "short") x = -x;
    v += (l.quantity / unit) * x;
  }
  return v;
}

// slopeAbove is the payoff's slope past the highest strike.
function slopeAbove(legs: ChartLeg[], unit: number): number {
  return legs.filter((l) => l.right === "call").reduce((s, l) => s + ((l.side === "short" ? -1 : 1) * l.quantity) / unit, 0);
}

// analyze is the server's analyze: the payoff bends only at strikes, so its
// extremes on [0, the last strike] are at 0 or a strike.
export function analyze(legs: ChartLeg[], unit: number): Figures {
  const xs = [0, ...legs.map((l) => l.strike)].sort((a, b) => a - b);
  const ys = xs.map((x) => payoff(legs, unit, x));
  const lo = Math.min(...ys);
  const hi = Math.max(...ys);
  const slope = slopeAbove(legs, unit);
  const f: Figures = { maxLoss: slope < 0 ? Infinity : round(-lo), maxGain: slope <= eps ? round(hi) : null, breakevens: [] };
  const add = (x: number) => {
    x = round(x);
    if (!f.breakevens.includes(x)) f.breakevens.push(x);
  };
  xs.forEach((x, i) => {
    if (ys[i] === 0 && (i > 0 || x > 0)) add(x);
    if (i + 1 < xs.length) {
      const [y0, y1] = [ys[i], ys[i + 1]];
      if ((y0 < 0 && y1 > 0) || (y0 > 0 && y1 < 0)) add(x + ((0 - y0) * (xs[i + 1] - x)) / (y1 - y0));
    }
  });
  const last = ys[ys.length - 1];
  if ((last < 0 && slope > 0) || (last > 0 && slope < 0)) add(xs[xs.length - 1] - last / slope);
  f.breakevens.sort((a, b) => a - b);
  return f;
}

// chartable turns the form's legs into numbers, or null while one is not
// a usable number (the chart waits for the form to make sense).
export function chartable(legs: { side: string; right: string; strike: string; quantity: string; premium: string }[]): ChartLeg[] | null {
  const out: ChartLeg[] = [];
  for (const l of legs) {
    const strike = Number(l.strike);
    const quantity = Number(l.quantity);
    const premium = Number(l.premium || 0);
    if (!(strike > 0) || !Number.isInteger(quantity) || quantity < 1 || !(premium >= 0)) return null;
    out.push({ side: l.side, right: l.right, strike, quantity, premium });
  }
  return out.length ? merge(out) : null;
}
