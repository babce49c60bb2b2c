import { useEffect, useRef, useState } from "react";
import { Account } from "./Account";
import { Files } from "./Files";
import { Verify } from "./Verify";
import { Evaluate } from "./Evaluate";
import { client } from "./session";
import { linkTo, navigate, useRoute } from "./route";
import { clearDrafts, draftNames } from "./drafts";

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

// unsavedFiles names the files with text typed and not saved.
function unsavedFiles(): string[] {
  return draftNames()
    .filter((n) => n.startsWith("file:"))
    .map((n) => n.slice(5));
}

// ExpiredDialog asks to sign in again over the page, which keeps its
// unsaved text. A native modal <dialog>: focus moves into it and stays
// there, and Escape does not dismiss it (there is nothing to go back to).
function ExpiredDialog() {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
    return () => d?.close();
  }, []);
  return (
    <dialog ref={ref} aria-label="Session expired" className="notice dialog" onCancel={(e) => e.preventDefault()}>
      <p>Your session has expired. Sign in again to go on; what you were doing below is kept.</p>
      <Account />
    </dialog>
  );
}

export function App() {
  const route = useRoute();
  const online = useOnline();
  const [signedIn, setSignedIn] = useState<boolean | null>(null);
  // A session that ends by itself (expired, revoked) keeps the page and its
  // unsaved text under a sign-in dialog; only "Sign out" leaves the page.
  const [expired, setExpired] = useState(false);
  useEffect(() => {
    client.onSession = (t) => {
      const deliberate = client.signingOut; // read now: the updater runs later
      setSignedIn((was) => {
        if (was && !t && !deliberate) setExpired(true);
        if (t) setExpired(false);
        return !!t;
      });
    };
    client.resume().then((ok) => setSignedIn(ok));
  }, []);
  // Closing or reloading the tab with unsaved text asks first (the text is
  // kept for a reload, but a closed tab's storage is gone).
  useEffect(() => {
    const ask = (e: BeforeUnloadEvent) => {
      if (unsavedFiles().length > 0) e.preventDefault();
    };
    addEventListener("beforeunload", ask);
    return () => removeEventListener("beforeunload", ask);
  }, []);
  useEffect(() => {
    if (route.path === "/" || route.path === "/index.html") navigate("/files/", true);
  }, [route.path]);

  async function signOut() {
    const unsaved = unsavedFiles();
    if (unsaved.length > 0 && !confirm(`You have unsaved changes in ${unsaved.join(", ")}. Sign out and discard them?`)) return;
    clearDrafts();
    await client.signOut();
  }

  const showPages = signedIn || expired;
  const pages: [string, string][] = [["/files/", "Files"], ["/verify", "Verifier"], ["/evaluate", "Evaluator"]];
  const section = route.path.startsWith("/verify") ? "/verify" : route.path.startsWith("/evaluate") ? "/evaluate" : "/files/";
  return (
    <>
      {!online && <div className="offline" role="status">You are offline. The app still opens and your unsaved text is kept; files and jobs need a connection.</div>}
      <header>
        <strong>HQ</strong>
        {showPages && (
          <nav aria-label="Main" className="row">
            {pages.map(([to, name]) => (
              <a key={to} {...linkTo(to)} aria-current={section === to ? "page" : undefined}>{name}</a>
            ))}
          </nav>
        )}
        <span className="spacer" />
        {signedIn && <button onClick={signOut}>Sign out</button>}
      </header>
      <main>
        {signedIn === null && <p>Loading…</p>}
        {signedIn === false && !expired && <Account />}
        {expired && <ExpiredDialog />}
        {showPages && section === "/verify" && <Verify route={route} />}
        {showPages && section === "/evaluate" && <Evaluate route={route} />}
        {showPages && section === "/files/" && <Files route={route} />}
      </main>
    </>
  );
}
