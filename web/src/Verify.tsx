import { FormEvent, useState } from "react";
import { client, message } from "./session";
import { JobList, JobView, useJobs } from "./Jobs";
import { Route, navigate } from "./route";
import { loadDraft, saveDraft } from "./drafts";

const DEFAULT_SOURCE = "theorem two : 1 + 1 = 2 := rfl\n";

// Verify: check a module of the project or a snippet. The run shown is in
// the URL (?job=), so a reload reattaches to it; the snippet is kept for
// the tab like a draft.
export function Verify({ route }: { route: Route }) {
  const kept = loadDraft("verify");
  const [mode, setMode] = useState<"target" | "source">(kept?.etag === "source" ? "source" : "target");
  const [target, setTarget] = useState("Proving.Basic");
  const [source, setSource] = useState(kept?.text ?? DEFAULT_SOURCE);
  const [error, setError] = useState("");
  const { jobs, reload } = useJobs("verify");
  const job = route.search.get("job") || "";
  const show = (id: string) => navigate("/verify?job=" + encodeURIComponent(id));

  function keep(m: string, text: string) {
    saveDraft("verify", { text, etag: m });
  }

  async function submit(e: FormEvent) {
    e.preventDefault();
    setError("");
    try {
      const out = await client.json<{ id: string }>("POST", "/api/verify", mode === "target" ? { target } : { source });
      show(out.id);
    } catch (err) {
      setError(message(err)); // the source stays in the editor
    }
    reload();
  }
  return (
    <>
      <h1>Verifier</h1>
      <form onSubmit={submit} aria-label="Verify">
        <fieldset className="row">
          <legend>What to check</legend>
          <label><input type="radio" name="mode" checked={mode === "target"} onChange={() => { setMode("target"); keep("target", source); }} /> A module of the project</label>
          <label><input type="radio" name="mode" checked={mode === "source"} onChange={() => { setMode("source"); keep("source", source); }} /> A Lean snippet</label>
        </fieldset>
        {mode === "target" ? (
          <>
            <label htmlFor="target">Module</label>
            <input id="target" value={target} onChange={(e) => setTarget(e.target.value)} />
          </>
        ) : (
          <>
            <label htmlFor="source">Lean source</label>
            <textarea id="source" value={source} onChange={(e) => { setSource(e.target.value); keep("source", e.target.value); }} />
          </>
        )}
        <p><button className="primary" type="submit">Check</button></p>
      </form>
      {error && <p className="error" role="alert">{error}</p>}
      <JobList jobs={jobs} current={job} onShow={show} onChange={reload} />
      {job && <JobView key={job} id={job} kind="verify" onDone={reload} />}
    </>
  );
}
