import { useEffect, useRef, useState } from "react";
import { JobEvent, follow } from "./sse";
import { client, message } from "./App";

// JobView streams one job live: a progress bar, diagnostics with
// file:line:col, collapsible logs, results and the final outcome. It
// resumes after a dropped connection without losing events.
export function JobView({ id, onDone }: { id: string; onDone?: () => void }) {
  const [events, setEvents] = useState<JobEvent[]>([]);
  const [status, setStatus] = useState("connecting");
  const [error, setError] = useState("");
  const abort = useRef<AbortController>();
  useEffect(() => {
    const ac = new AbortController();
    abort.current = ac;
    setEvents([]);
    follow(client, id, (e) => setEvents((evs) => [...evs, e]), { signal: ac.signal, onStatus: setStatus })
      .then(() => onDone?.())
      .catch((e) => setError(message(e)));
    return () => ac.abort();
  }, [id]);
  const progress = [...events].reverse().find((e) => e.type === "progress");
  const done = events.find((e) => e.type === "done")?.data;
  const diags = events.filter((e) => e.type === "diagnostic");
  const logs = events.filter((e) => e.type === "log" || e.type === "status");
  const results = events.filter((e) => e.type === "result");
  return (
    <section aria-label="Job" aria-live="polite">
      {error && <p className="error" role="alert">{error}</p>}
      {!done && <p role="status">{status === "reconnecting" ? "Connection lost; reconnecting without losing events…" : "Running…"}</p>}
      {!done && <button onClick={() => client.request("DELETE", "/api/jobs/" + id)}>Cancel</button>}
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
        <pre key={r.id} aria-label="Result">{JSON.stringify(r.data.result, null, 2)}</pre>
      ))}
      <details>
        <summary>Log ({logs.length} lines)</summary>
        <pre>{logs.map((l) => l.data.msg).join("\n")}</pre>
      </details>
      {done && (
        <p className={done.ok ? "notice" : "error"} role="status" aria-label="Outcome">
          {done.cancelled ? "Cancelled" : done.limit ? `Stopped: the ${done.limit} limit was reached` : done.verified ? "Verified ✔" : done.ok ? "Succeeded" : "Failed"}
          {done.cached ? " (cached result)" : ""}
          {done.exitCode !== null && done.exitCode !== undefined ? ` · exit code ${done.exitCode}` : ""} · {done.durationMs} ms
        </p>
      )}
    </section>
  );
}
