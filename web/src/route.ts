// The app's pages live in the URL's path, so reload, Back and links work:
// /files/ and /files/a/b/ (a folder), /files/a/b/c.md (a file open in its
// folder), /verify and /evaluate, each with ?job=ID for the run shown.
import { useEffect, useState } from "react";

export type Route = { path: string; search: URLSearchParams };

function current(): Route {
  // Links of the hash-routed app (#/verify) still work.
  if (location.hash.startsWith("#/")) history.replaceState(null, "", location.hash.slice(1));
  return { path: location.pathname, search: new URLSearchParams(location.search) };
}

const listeners = new Set<() => void>();

// navigate goes to a page of the app without reloading it.
export function navigate(to: string, replace = false) {
  if (to === location.pathname + location.search) return;
  if (replace) history.replaceState(null, "", to);
  else history.pushState(null, "", to);
  listeners.forEach((l) => l());
}

export function useRoute(): Route {
  const [route, setRoute] = useState(current);
  useEffect(() => {
    const on = () => setRoute(current());
    listeners.add(on);
    addEventListener("popstate", on);
    return () => {
      listeners.delete(on);
      removeEventListener("popstate", on);
    };
  }, []);
  return route;
}

// filesURL is the URL of a folder (ending in /) or a file under /files/.
export function filesURL(path: string): string {
  return "/files/" + path.split("/").map(encodeURIComponent).join("/");
}

// filesPath reads the folder and the open file from a /files/ URL path.
export function filesPath(pathname: string): { prefix: string; file: string } {
  let rel = pathname.replace(/^\/files\/?/, "");
  try {
    rel = rel.split("/").map(decodeURIComponent).join("/");
  } catch {
    return { prefix: "", file: "" };
  }
  if (rel === "" || rel.endsWith("/")) return { prefix: rel, file: "" };
  return { prefix: rel.slice(0, rel.lastIndexOf("/") + 1), file: rel };
}

// linkTo makes a plain <a href> navigate inside the app on a plain click.
export function linkTo(to: string) {
  return {
    href: to,
    onClick: (e: { preventDefault: () => void; metaKey: boolean; ctrlKey: boolean; shiftKey: boolean; button: number }) => {
      if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
      e.preventDefault();
      navigate(to);
    },
  };
}
