import { FormEvent, useState } from "react";
import { client, message } from "./session";

// The password rules of the user pool (deploy/terraform's identity module,
// Cognito's defaults, and the dev provider), all shown at once as they are
// met rather than one refusal at a time.
const SYMBOLS = "^$*.[]{}()?\"!@#%&/\\,><':;|_~`=+- ";
export const passwordRules: [string, (p: string) => boolean][] = [
  ["at least 8 characters", (p) => p.length >= 8],
  ["an upper-case letter", (p) => /[A-Z]/.test(p)],
  ["a lower-case letter", (p) => /[a-z]/.test(p)],
  ["a digit", (p) => /[0-9]/.test(p)],
  ["a symbol such as ! or #", (p) => [...p].some((c) => SYMBOLS.includes(c))],
];

// Account: sign in, sign up, and the confirmation-code step real Cognito
// sends (the dev provider and cognito-local confirm at once).
export function Account() {
  const [mode, setMode] = useState<"in" | "up" | "confirm">("in");
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [code, setCode] = useState("");
  const [error, setError] = useState("");
  const [notice, setNotice] = useState("");
  const [busy, setBusy] = useState(false);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setError("");
    setBusy(true);
    try {
      if (mode === "up") {
        const { confirmed } = await client.signUp(email, password);
        if (!confirmed) {
          setMode("confirm");
          setNotice("We sent a code to " + email + ". Enter it to confirm your account.");
          return;
        }
        await client.signIn(email, password);
      } else if (mode === "confirm") {
        await client.confirm(email, code);
        await client.signIn(email, password);
      } else {
        await client.signIn(email, password);
      }
    } catch (err) {
      setError(message(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <form onSubmit={submit} aria-label={mode === "up" ? "Create an account" : "Sign in"} style={{ maxWidth: "24rem" }}>
      <h1>{mode === "up" ? "Create an account" : mode === "confirm" ? "Confirm your account" : "Sign in"}</h1>
      {notice && <p className="notice" role="status">{notice}</p>}
      {error && <p className="error" role="alert">{error}</p>}
      <label htmlFor="email">E-mail</label>
      <input id="email" type="email" autoComplete="username" required value={email} onChange={(e) => setEmail(e.target.value)} />
      {mode !== "confirm" && (
        <>
          <label htmlFor="password">Password</label>
          <input id="password" type="password" autoComplete={mode === "up" ? "new-password" : "current-password"} required value={password} onChange={(e) => setPassword(e.target.value)} aria-describedby={mode === "up" ? "password-rules" : undefined} />
          {mode === "up" && (
            <ul id="password-rules" className="rules" aria-label="It needs">
              {passwordRules.map(([rule, ok]) => (
                <li key={rule} className={ok(password) ? "met" : undefined}>
                  {ok(password) ? "✓" : "○"} {rule}<span className="sr-only">{ok(password) ? " (met)" : " (not yet)"}</span>
                </li>
              ))}
            </ul>
          )}
        </>
      )}
      {mode === "confirm" && (
        <>
          <label htmlFor="code">Confirmation code</label>
          <input id="code" inputMode="numeric" autoComplete="one-time-code" required value={code} onChange={(e) => setCode(e.target.value)} />
        </>
      )}
      <p className="row">
        <button className="primary" type="submit" disabled={busy}>{mode === "up" ? "Create account" : mode === "confirm" ? "Confirm" : "Sign in"}</button>
        {mode === "in" && <button type="button" onClick={() => setMode("up")}>Create an account</button>}
        {mode !== "in" && <button type="button" onClick={() => setMode("in")}>I have an account</button>}
      </p>
    </form>
  );
}
