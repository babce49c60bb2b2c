import { FormEvent, useState } from "react";
import { client, message } from "./App";
import { JobView } from "./Jobs";

export function Verify() {
  const [mode, setMode] = useState<"target" | "source">("target");
  const [target, setTarget] = useState("Proving.Basic");
  const [source, setSource] = useState("theorem two : 1 + 1 = 2 := rfl\n");
  const [job, setJob] = useState("");
  const [error, setError] = useState("");
  async function submit(e: FormEvent) {
    e.preventDefault();
    setError("");
    try {
      const out = await client.json<{ id: string }>("POST", "/api/verify", mode === "target" ? { target } : { source });
      setJob(out.id);
    } catch (err) {
      setError(message(err)); // the source stays in the editor
    }
  }
  return (
    <>
      <h1>Verifier</h1>
      <form onSubmit={submit} aria-label="Verify">
        <div className="row" role="radiogroup" aria-label="What to check">
          <label><input type="radio" checked={mode === "target"} onChange={() => setMode("target")} /> A module of the project</label>
          <label><input type="radio" checked={mode === "source"} onChange={() => setMode("source")} /> A Lean snippet</label>
        </div>
        {mode === "target" ? (
          <>
            <label htmlFor="target">Module</label>
            <input id="target" value={target} onChange={(e) => setTarget(e.target.value)} />
          </>
        ) : (
          <>
            <label htmlFor="source">Lean source</label>
            <textarea id="source" value={source} onChange={(e) => setSource(e.target.value)} />
          </>
        )}
        <p><button className="primary" type="submit">Check</button></p>
      </form>
      {error && <p className="error" role="alert">{error}</p>}
      {job && <JobView key={job} id={job} />}
    </>
  );
}
