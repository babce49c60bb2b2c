import { useCallback, useEffect, useEffectEvent, useState } from "react";
import { DoneData, EventData, JobEvent, follow } from "./sse";
import { JobSummary, listJobs } from "./api";
import { client, message } from "./session";

// JobView streams one job live: a progress bar, diagnostics with
// file:line:col, collapsible logs, results and the final outcome. It
// resumes after a dropped connection without losing events.
// Callers key it by the job's id: another job is another view.
export function JobView({ id, kind, onDone }: { id: string; kind: "verify" | "evaluate"; onDone?: () => void }) {
  const [events, setEvents] = useState<JobEvent[]>([]);
  const [status, setStatus] = useState("connecting");
  const [error, setError] = useState("");
  const finished = useEffectEvent(() => onDone?.());
  useEffect(() => {
    const ac = new AbortController();
    follow(client, id, (e) => setEvents((evs) => [...evs, e]), { signal: ac.signal, onStatus: setStatus })
      .then(() => finished())
      .catch((e) => setError(message(e)));
    return () => ac.abort();
  }, [id]);
  const progress = [...events].reverse().find((e) => e.type === "progress");
  const stage = [...events].reverse().find((e) => e.data.stage && e.data.stage !== "done")?.data.stage;
  const done = events.find((e) => e.type === "done")?.data as (EventData & DoneData) | undefined;
  const diags = events.filter((e) => e.type === "diagnostic");
  const logs = events.filter((e) => e.type === "log" || e.type === "status");
  const results = events.filter((e) => e.type === "result");
  return (
    // Only the status lines are live regions (the stage, then the outcome):
    // a screen reader hears those, not every line of the log.
    <section aria-label="Job">
      {error && <p className="error" role="alert">{error}</p>}
      {!done && <p role="status">{status === "reconnecting" ? "Connection lost; reconnecting without losing events…" : `Running${stage ? ": " + stage : "…"}`}</p>}
      {!done && <button onClick={() => client.request("DELETE", "/api/jobs/" + id).then(() => onDone?.())}>Cancel</button>}
      {progress && (
        <p>
          <progress max={progress.data.total} value={progress.data.done} aria-label="Build progress" /> {progress.data.done}/{progress.data.total} {progress.data.msg}
        </p>
      )}
      {diags.length > 0 && (
        <ul aria-label="Diagnostics">
          {diags.map((d) => (
            <li key={d.id} className={"diag-" + d.data.severity}>
              <strong>{d.data.severity}</strong> {d.data.file}:{d.data.line}:{d.data.col} <pre>{d.data.msg}</pre>
            </li>
          ))}
        </ul>
      )}
      {results.map((r) => (
        <ResultTable key={r.id} result={r.data.result} />
      ))}
      <details>
        <summary>Log ({logs.length} lines)</summary>
        <pre>{logs.map((l) => l.data.msg).join("\n")}</pre>
      </details>
      {done && (
        <p className={done.ok ? "notice" : "error"} role="status" aria-label="Outcome">
          {done.cancelled ? "Cancelled" : done.limit ? `Stopped: the ${done.limit} limit was reached` : done.verified ? (kind === "evaluate" ? "Evaluated ✔" : "Verified ✔") : done.ok ? "Succeeded" : "Failed"}
          {done.cached ? " (cached result)" : ""}
          {done.exitCode !== null && done.exitCode !== undefined ? ` · exit code ${done.exitCode}` : ""} · {done.durationMs} ms
        </p>
      )}
    </section>
  );
}

// useJobs keeps the user's jobs of one kind (GET /api/jobs), refreshed
// every few seconds while any is active, so that runs started before a
// reload, or in another tab, can always be found, resumed and cancelled.
export function useJobs(kind: string): { jobs: JobSummary[]; reload: () => void } {
  const [jobs, setJobs] = useState<JobSummary[]>([]);
  const reload = useCallback(() => {
    listJobs(client)
      .then((all) => setJobs(all.filter((j) => j.kind === kind)))
      .catch(() => {
        /* the list is a convenience: the screen's own errors say what failed */
      });
  }, [kind]);
  useEffect(() => {
    reload();
  }, [reload]);
  const active = jobs.some((j) => j.status !== "done");
  useEffect(() => {
    if (!active) return;
    const t = setInterval(reload, 3000);
    return () => clearInterval(t);
  }, [active, reload]);
  return { jobs, reload };
}

// JobList shows the user's runs of one kind, the one on screen marked, with
// Show and Cancel.
export function JobList({ jobs, current, onShow, onChange }: { jobs: JobSummary[]; current: string; onShow: (id: string) => void; onChange: () => void }) {
  if (jobs.length === 0) return null;
  const outcome = (j: JobSummary) =>
    j.status !== "done" ? j.status : j.done?.cancelled ? "cancelled" : j.done?.limit ? `stopped (${j.done.limit})` : j.done?.verified ? (j.kind === "evaluate" ? "evaluated" : "verified") : j.done?.ok ? "succeeded" : "failed";
  return (
    <section aria-label="Your runs">
      <h2>Your runs</h2>
      <ul className="runs">
        {jobs.map((j) => (
          <li key={j.id} aria-current={j.id === current ? "true" : undefined}>
            <span>{j.target || j.strategy || j.kind}</span> <span>{outcome(j)}</span> <span>{new Date(j.createdAt).toLocaleTimeString()}</span>{" "}
            {j.id !== current && <button onClick={() => onShow(j.id)} aria-label={`Show the run of ${j.target || j.strategy} started ${new Date(j.createdAt).toLocaleTimeString()}`}>Show</button>}
            {j.status !== "done" && (
              <button onClick={() => client.request("DELETE", "/api/jobs/" + j.id).catch((e) => alert(message(e))).finally(onChange)} aria-label={`Cancel the run of ${j.target || j.strategy} started ${new Date(j.createdAt).toLocaleTimeString()}`}>Cancel</button>
            )}
          </li>
        ))}
      </ul>
    </section>
  );
}

// ResultTable shows the kernel's result as a table of its fields, the raw
// JSON behind a disclosure.
function ResultTable({ result }: { result: unknown }) {
  const rows = result && typeof result === "object" && !Array.isArray(result) ? Object.entries(result as Record<string, unknown>) : [];
  const show = (v: unknown) => (typeof v === "object" && v !== null ? JSON.stringify(v) : String(v));
  return (
    <div role="group" aria-label="Result">
      {rows.length > 0 && (
        <table className="result">
          <caption className="sr-only">The evaluation's result</caption>
          <tbody>
            {rows.map(([k, v]) => (
              <tr key={k}>
                <th scope="row">{k}</th>
                <td>{show(v)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <details>
        <summary>Raw result (JSON)</summary>
        <pre>{JSON.stringify(result, null, 2)}</pre>
      </details>
    </div>
  );
}
