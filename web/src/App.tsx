import { useEffect, useState } from "react";
import { ApiError, Client } from "./api";
import { Account } from "./Account";
import { Files } from "./Files";
import { Verify } from "./Verify";
import { Evaluate } from "./Evaluate";

export const client = new Client(undefined, undefined, typeof sessionStorage !== "undefined" ? sessionStorage : undefined);

function useHash(): string {
  const [hash, setHash] = useState(location.hash || "#/files");
  useEffect(() => {
    const on = () => setHash(location.hash || "#/files");
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  return hash;
}

function useOnline(): boolean {
  const [online, setOnline] = useState(navigator.onLine);
  useEffect(() => {
    const on = () => setOnline(navigator.onLine);
    addEventListener("online", on);
    addEventListener("offline", on);
    return () => {
      removeEventListener("online", on);
      removeEventListener("offline", on);
    };
  }, []);
  return online;
}

export function message(e: unknown): string {
  if (e instanceof ApiError) return e.message;
  return e instanceof Error ? e.message : String(e);
}

export function App() {
  const hash = useHash();
  const online = useOnline();
  const [signedIn, setSignedIn] = useState<boolean | null>(null);
  // A session that ends by itself (expired, revoked) keeps the page and its
  // unsaved text under a sign-in dialog; only "Sign out" leaves the page.
  const [expired, setExpired] = useState(false);
  useEffect(() => {
    client.onSession = (t) => {
      setSignedIn((was) => {
        if (was && !t && !client.signingOut) setExpired(true);
        if (t) setExpired(false);
        return !!t;
      });
    };
    client.resume().then((ok) => setSignedIn(ok));
  }, []);
  const showPages = signedIn || expired;
  const pages: [string, string][] = [["#/files", "Files"], ["#/verify", "Verifier"], ["#/evaluate", "Evaluator"]];
  return (
    <>
      {!online && <div className="offline" role="status">You are offline. The app still opens; files and jobs need a connection.</div>}
      <header>
        <strong>HQ</strong>
        {showPages && (
          <nav aria-label="Main" className="row">
            {pages.map(([h, name]) => (
              <a key={h} href={h} aria-current={hash.startsWith(h) ? "page" : undefined}>{name}</a>
            ))}
          </nav>
        )}
        <span className="spacer" />
        {signedIn && <button onClick={() => client.signOut()}>Sign out</button>}
      </header>
      <main>
        {signedIn === null && <p>Loading…</p>}
        {signedIn === false && !expired && <Account />}
        {expired && (
          <div role="dialog" aria-modal="true" aria-label="Session expired" className="notice">
            <p>Your session has expired. Sign in again to go on; what you were doing below is kept.</p>
            <Account />
          </div>
        )}
        {showPages && hash.startsWith("#/verify") && <Verify />}
        {showPages && hash.startsWith("#/evaluate") && <Evaluate />}
        {showPages && !hash.startsWith("#/verify") && !hash.startsWith("#/evaluate") && <Files />}
      </main>
    </>
  );
}
