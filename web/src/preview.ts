// Previews of HQ's text files: Markdown rendered and sanitised, YAML, JSON
// and Lean highlighted. Everything is turned into HTML that DOMPurify has
// cleaned (no script, no event handler, no form, no iframe), and a remote
// image is never fetched by itself: it becomes a link the user can follow.
import DOMPurify from "dompurify";
import { marked } from "marked";
import hljs from "highlight.js/lib/core";
import json from "highlight.js/lib/languages/json";
import yaml from "highlight.js/lib/languages/yaml";
import type { HLJSApi, Language } from "highlight.js";

hljs.registerLanguage("json", json);
hljs.registerLanguage("yaml", yaml);
// Lean 4, enough to read a proof: keywords, comments, strings, numbers.
hljs.registerLanguage("lean", (h: HLJSApi): Language => ({
  name: "Lean",
  keywords: {
    keyword: "theorem lemma def example abbrev instance structure class inductive where by fun let have show from at with match do if then else open namespace section end variable import universe noncomputable private protected partial mutual deriving calc",
    built_in: "sorry rfl simp exact intro apply rw cases induction omega decide trivial constructor",
    literal: "true false True False",
  },
  contains: [
    h.COMMENT("--", "$"),
    h.COMMENT("/-", "-/", { contains: ["self"] }),
    h.QUOTE_STRING_MODE,
    h.C_NUMBER_MODE,
  ],
}));

export type PreviewKind = "markdown" | "yaml" | "json" | "lean";

// previewKind says how a file is previewed, by its name.
export function previewKind(path: string): PreviewKind | null {
  const ext = path.toLowerCase().split(".").pop();
  switch (ext) {
    case "md":
    case "markdown":
      return "markdown";
    case "yaml":
    case "yml":
      return "yaml";
    case "json":
      return "json";
    case "lean":
      return "lean";
  }
  return null;
}

// render is the preview's HTML, sanitised.
export function render(kind: PreviewKind, text: string): string {
  if (kind !== "markdown") {
    const code = hljs.highlight(text, { language: kind, ignoreIllegals: true }).value;
    return DOMPurify.sanitize(`<pre><code class="hljs">${code}</code></pre>`);
  }
  const html = marked.parse(text, { async: false, gfm: true });
  const clean = DOMPurify.sanitize(html, { FORBID_TAGS: ["style", "form", "input", "button", "iframe", "object", "embed"], FORBID_ATTR: ["style"] });
  // Remote images become links: a preview must not call other servers.
  const doc = new DOMParser().parseFromString(`<div>${clean}</div>`, "text/html");
  for (const img of Array.from(doc.querySelectorAll("img"))) {
    const src = img.getAttribute("src") || "";
    if (/^(data:|blob:)/i.test(src)) continue;
    const a = doc.createElement("a");
    a.href = src;
    a.rel = "noopener noreferrer";
    a.target = "_blank";
    a.textContent = `[image: ${img.getAttribute("alt") || src}]`;
    img.replaceWith(a);
  }
  for (const a of Array.from(doc.querySelectorAll("a[href]"))) {
    a.setAttribute("rel", "noopener noreferrer");
    if (!/^(https?:|mailto:|#)/i.test(a.getAttribute("href") || "")) a.removeAttribute("href");
  }
  return DOMPurify.sanitize(doc.body.firstElementChild!.innerHTML);
}
