import { FormEvent, useState } from "react";
import { ApiError } from "./api";
import { client, message } from "./session";
import { JobList, JobView, useJobs } from "./Jobs";
import { Route, navigate } from "./route";
import { PayoffChart } from "./PayoffChart";
import { chartable } from "./payoff";
import { loadDraft, saveDraft } from "./drafts";

type Leg = { side: string; right: string; strike: string; expiry: string; quantity: string; premium: string };

function nextFriday(): string {
  const d = new Date();
  d.setUTCDate(d.getUTCDate() + 30 + ((5 - d.getUTCDay() + 7) % 7));
  return d.toISOString().slice(0, 10);
}

const blank = (side: string, right: string, strike: number, premium: number): Leg => ({
  side, right, strike: String(strike), expiry: nextFriday(), quantity: "1", premium: String(premium),
});

const presets: Record<string, () => Leg[]> = {
  "Iron condor": () => [blank("long", "put", 90, 1), blank("short", "put", 95, 2), blank("short", "call", 105, 2), blank("long", "call", 110, 1)],
  "Vertical spread": () => [blank("long", "call", 100, 5), blank("short", "call", 110, 2)],
  Butterfly: () => [blank("long", "call", 90, 12), { ...blank("short", "call", 100, 5), quantity: "2" }, blank("long", "call", 110, 1)],
  "Long call": () => [blank("long", "call", 100, 3)],
};

// EvaluateAnswer is POST /api/evaluate's answer: the job and the figures
// computed before it runs (SPEC §7).
type EvaluateAnswer = { id: string; strategy: string; maxLoss: number; maxGain: number | null; breakevens: number[] };

// keptPortfolio is the portfolio being edited, kept for the tab so that
// going to another screen or reloading does not reset it.
function keptPortfolio(): { underlying: string; legs: Leg[] } | null {
  try {
    const d = loadDraft("evaluate");
    return d ? JSON.parse(d.text) : null;
  } catch {
    return null;
  }
}

export function Evaluate({ route }: { route: Route }) {
  const kept = keptPortfolio();
  const [underlying, setUnderlyingState] = useState(kept?.underlying ?? "SPY");
  const [legs, setLegsState] = useState<Leg[]>(kept?.legs ?? presets["Iron condor"]());
  const [error, setError] = useState<{ msg: string; leg?: number } | null>(null);
  const [answer, setAnswer] = useState<EvaluateAnswer | null>(null);
  const { jobs, reload } = useJobs("evaluate");
  const job = route.search.get("job") || "";
  const show = (id: string) => navigate("/evaluate?job=" + encodeURIComponent(id));
  const keep = (u: string, ls: Leg[]) => saveDraft("evaluate", { text: JSON.stringify({ underlying: u, legs: ls }), etag: "" });
  const setLegs = (ls: Leg[]) => {
    setLegsState(ls);
    keep(underlying, ls);
  };
  const setUnderlying = (u: string) => {
    setUnderlyingState(u);
    keep(u, legs);
  };
  const chartLegs = chartable(legs);
  const set = (i: number, k: keyof Leg, v: string) => setLegs(legs.map((l, j) => (j === i ? { ...l, [k]: v } : l)));

  async function submit(e: FormEvent) {
    e.preventDefault();
    setError(null);
    setAnswer(null);
    const body = {
      portfolio: {
        underlying,
        legs: legs.map((l) => ({ side: l.side, right: l.right, strike: Number(l.strike), expiry: l.expiry, quantity: Number(l.quantity), premium: Number(l.premium || 0) })),
      },
    };
    try {
      const out = await client.json<EvaluateAnswer>("POST", "/api/evaluate", body);
      setAnswer(out);
      show(out.id);
    } catch (err) {
      // The server names the leg a refusal is about (SPEC §7), 1-based.
      const leg = err instanceof ApiError && err.leg ? err.leg - 1 : undefined;
      setError({ msg: message(err), leg });
      if (!(err instanceof ApiError)) throw err;
    }
    reload();
  }

  return (
    <>
      <h1>Evaluator</h1>
      <p className="row">
        Start from:{" "}
        {Object.keys(presets).map((p) => (
          <button key={p} type="button" onClick={() => setLegs(presets[p]())}>{p}</button>
        ))}
      </p>
      <form onSubmit={submit} aria-label="Portfolio">
        <label htmlFor="underlying">Underlying</label>
        <input id="underlying" value={underlying} onChange={(e) => setUnderlying(e.target.value)} />
        <table className="legs">
          <thead><tr><th>#</th><th>Side</th><th>Right</th><th>Strike</th><th>Expiry</th><th>Qty</th><th>Premium</th><th><span className="sr-only">Remove</span></th></tr></thead>
          <tbody>
            {legs.map((l, i) => (
              <tr key={i} className={error?.leg === i ? "invalid" : undefined}>
                <td className="leg-no">{i + 1}</td>
                <td data-label="Side"><select aria-label={`Leg ${i + 1} side`} value={l.side} onChange={(e) => set(i, "side", e.target.value)}><option>long</option><option>short</option></select></td>
                <td data-label="Right"><select aria-label={`Leg ${i + 1} right`} value={l.right} onChange={(e) => set(i, "right", e.target.value)}><option>call</option><option>put</option></select></td>
                <td data-label="Strike"><input aria-label={`Leg ${i + 1} strike`} aria-invalid={error?.leg === i || undefined} size={6} value={l.strike} onChange={(e) => set(i, "strike", e.target.value)} /></td>
                <td data-label="Expiry"><input aria-label={`Leg ${i + 1} expiry`} type="date" value={l.expiry} onChange={(e) => set(i, "expiry", e.target.value)} /></td>
                <td data-label="Qty"><input aria-label={`Leg ${i + 1} quantity`} size={3} value={l.quantity} onChange={(e) => set(i, "quantity", e.target.value)} /></td>
                <td data-label="Premium"><input aria-label={`Leg ${i + 1} premium`} size={5} value={l.premium} onChange={(e) => set(i, "premium", e.target.value)} /></td>
                <td>
                  <button type="button" aria-label={`Remove leg ${i + 1}`} onClick={() => setLegs(legs.filter((_, j) => j !== i))}>✕</button>
                  {error?.leg === i && <span className="error" role="alert">{error.msg}</span>}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        <p className="row">
          <button type="button" onClick={() => setLegs([...legs, blank("long", "call", 100, 0)])}>Add a leg</button>
          <button className="primary" type="submit">Evaluate</button>
        </p>
      </form>
      {error && error.leg === undefined && <p className="error" role="alert">{error.msg}</p>}
      {chartLegs && <PayoffChart legs={chartLegs} />}
      <JobList jobs={jobs} current={job} onShow={show} onChange={reload} />
      {answer && answer.id === job && (
        <dl aria-label="Strategy">
          <dt>Strategy</dt><dd>{answer.strategy}</dd>
          <dt>Maximum loss</dt><dd>{answer.maxLoss}</dd>
          <dt>Maximum gain</dt><dd>{answer.maxGain === null ? "unbounded" : answer.maxGain}</dd>
          <dt>Break-evens</dt><dd>{answer.breakevens.join(", ")}</dd>
        </dl>
      )}
      {job && <JobView key={job} id={job} kind="evaluate" onDone={reload} />}
    </>
  );
}
