// leadglue loader. Marketers embed the form in one of two ways:
// - The snippet (`widget/loader/snippet.html`), inline code in one <script> tag, as analytics
//   tags are pasted. It opens the Shadow DOM where it stands, fetches the form's first step as
//   plain HTML from the edge at once and shows it, then imports this module and hands it the
//   form (`embed` below). Visitors can fill the form in before this module has even arrived.
//   (After a failed import, a snippet tries again on the next submit under `?2`, `?3`…)
//   A page's Content-Security-Policy allows it by its hash, the same on every page.
// - This module as the tag itself, for pages whose policy allows no inline code:
//     <script type="module" async src="https://EDGE/widget/v1/leadglue.js" data-site="SITE_ID"></script>
//   (`async`: a plain module script is deferred, and deferred scripts hold up the page's
//   DOMContentLoaded until they have been fetched and run; an async one holds up nothing.) It
//   opens a Shadow DOM where each such tag stands, and shows the first step when the form nears
//   the viewport, or once the page has loaded and the browser is idle. This is later than the
//   snippet: a module file runs only after the page's first frame, and only then asks for the
//   form.
// Either way, data-target names the element to show the form in, and data-form one of the
// site's forms. The widget itself (its WebAssembly) is fetched only when a visitor first
// touches the form, and takes over from the HTML with what they typed; a visitor who never
// touches it never downloads it.
// __GLUE__ and __WASM__ are replaced at build time with content-hashed file names,
// __DEFAULT_FORM__ with the built-in form's id (shared::form::DEFAULT_FORM_ID).

const here = import.meta.url;
const origin = new URL(here).origin;
let app;
// How long a download may stall: the wasm and configuration without a byte, the glue in all.
const STALL_MS = 1e4;
// Fetches `url`. A download that stops (no byte for 10 s: a stalled connection, which browsers
// never give up on by themselves) is cut off, and fails.
const watched = (url) => {
  const stop = new AbortController();
  let timer;
  const alive = () => {
    clearTimeout(timer);
    timer = setTimeout(() => stop.abort(), STALL_MS);
  };
  alive();
  const got = fetch(url, { signal: stop.signal });
  // Watched through a copy, so that the response itself is left to its reader: the wasm's is
  // compiled as it comes (and its compiled code cached by its URL, which a response made here
  // would not have).
  got
    .then(async (r) => {
      const copy = r.clone().body.getReader();
      while (!(await copy.read()).done) alive();
    })
    .catch(() => {})
    .finally(() => clearTimeout(timer));
  return got;
};
// Tries so far. Each asks for the glue under an address of its own: a browser does not fetch a
// module again under an address whose import failed, or never ended.
let tried = 0;
// The glue and the wasm are asked for together, not one after the other, and once more at once
// if that fails (a stalled download among other causes). A failure after that (offline) is
// forgotten, so that the next touch tries again. An import takes no signal: one that has not
// come in 10 s (the glue is ~6 KB) is given up as stalled.
const load = (tries = 2) => {
  if (!app) {
    const module = watched(new URL("__WASM__", here));
    module.catch(() => {}); // a failure is the glue's to report
    const glue = new URL("__GLUE__", here);
    if (tried++) glue.search = tried;
    app = Promise.race([import(glue.href), new Promise((_, no) => setTimeout(no, STALL_MS, Error("stalled")))])
      .then(async (m) => {
        await m.default({ module_or_path: module });
        return m;
      })
      .catch((e) => {
        app = 0;
        if (--tries) return load(tries);
        throw e;
      });
  }
  return app;
};

// localStorage may be unavailable (privacy modes): then there is nothing to read or keep.
const stored = (f) => {
  try {
    return f(localStorage);
  } catch {}
};

// The visit's first page, kept for the widget to send with the lead (its `attribution` module
// reads it): written here because the widget may never load on that page.
const remember = (site) =>
  stored((s) => {
    const key = `leadglue:first-touch:${site}`;
    let kept;
    try {
      kept = JSON.parse(s.getItem(key));
    } catch {}
    // Kept for 90 days, then a visit starts afresh.
    if (!(Date.now() - kept?.at < 7776e6)) {
      const touch = { landing_page: location.href, referrer: document.referrer || undefined };
      s.setItem(key, JSON.stringify({ touch, at: Date.now() }));
    }
  });

// Says that the form in `root` cannot be sent, in the words its markup carries, where its general
// error goes and to screen readers (as the widget does, and the snippet if this module cannot
// be had).
const cannotSend = (root) => {
  const words = root.querySelector("[data-cannot-send]")?.dataset.cannotSend;
  if (words)
    for (const el of root.querySelectorAll("[data-testid=general-error],[data-testid=announcer]")) el.textContent = words;
};

// Wires a form's root (the element inside its shadow root) once `html`, a promise of the form's
// markup being in `root`, settles: the widget is fetched on the visitor's first touch, or at
// once for a submission an earlier page could not deliver; without markup, it shows the form
// itself (or says why it cannot). The snippet calls this once it has put the markup in itself,
// so what may have happened first is checked too: a visitor who has focused the form or sent it
// meanwhile. Snippets pasted on pages call it by this name and signature: keep both.
export const embed = (root, site, form, html) => {
  form ||= "__DEFAULT_FORM__";
  const api = `${origin}/v1/sites/${site}/forms/${form}`;
  let booted;
  // The widget: its configuration is asked for with the glue and the wasm, rather than by the
  // wasm once it runs (a round trip less).
  const boot = () => {
    if (booted) return;
    booted = 1;
    // Cut off if it stalls: the widget then says the form cannot be loaded.
    const config = watched(api);
    config.catch(() => {}); // a failure is the widget's to report, once it runs
    load().then(
      (m) => m.mount(root, site, form, origin, config),
      () => {
        booted = 0;
        // Sent, and the widget cannot be had (offline): say so; sending again tries again.
        if (root.dataset.held) cannotSend(root);
      },
    );
  };
  html
    .then(() => {
      const shown = root.querySelector(".lg");
      for (const type of ["focusin", "pointerdown", "keydown"]) shown.addEventListener(type, boot);
      // A word being composed with an input method (as Japanese is typed): the widget waits for
      // it to be committed before it takes over, since a field replaced mid-word loses the
      // input method's work. An `input` while composing marks one begun before this ran.
      shown.addEventListener("compositionstart", () => (root.dataset.composing = 1));
      shown.addEventListener("input", (e) => e.isComposing && (root.dataset.composing = 1));
      shown.addEventListener("compositionend", () => delete root.dataset.composing);
      // Sent before the widget is there: it sends it once it has taken over.
      shown.addEventListener("submit", (e) => {
        e.preventDefault();
        root.dataset.held = 1;
        boot();
      });
      if (shown.hasAttribute("data-first-touch")) remember(site);
      if (
        root.dataset.held ||
        root.getRootNode().activeElement ||
        // A submission an earlier page could not deliver: the widget sends it now.
        stored((s) => Object.keys(s).some((k) => k.startsWith(`leadglue:outbox:${site}:`)))
      )
        boot();
    })
    // No markup (offline, or the edge refuses this page): the widget shows the form itself, or
    // says why it cannot.
    .catch(boot);
};

// The script tag: a module runs once however many tags name it, so one run serves every tag.
// An async one may run before the page is parsed: then it waits for the tags, targets and
// <body> to exist.
const run = () => {
  for (const tag of document.querySelectorAll("script[data-site]")) {
    if (tag.src !== here) continue;
    const target = tag.dataset.target && document.getElementById(tag.dataset.target);
    const host = target || document.createElement("div");
    // A tag in <head> cannot show anything where it stands: the form then goes at the end of
    // <body> (which exists by now: see `run` below).
    if (!target) tag.closest("head") ? document.body.append(host) : tag.before(host);
    const root = host.attachShadow({ mode: "open" }).appendChild(document.createElement("div"));
    const site = tag.dataset.site;
    const form = tag.dataset.form || "__DEFAULT_FORM__";
    let seen;
    // The form's markup, once it nears the viewport or the page is loaded and the browser idle.
    const start = () => {
      if (seen) return;
      seen = 1;
      io.disconnect();
      embed(
        root,
        site,
        form,
        watched(`${origin}/v1/sites/${site}/forms/${form}/html`)
          .then((r) => (r.ok ? r.text() : Promise.reject()))
          .then((html) => {
            root.innerHTML = html;
          }),
      );
    };
    const io = new IntersectionObserver((es) => es.some((e) => e.isIntersecting) && start(), {
      rootMargin: "400px",
    });
    // Already in view (the usual case for a form above the fold): start now rather than wait a
    // frame or more for the observer's first report.
    const r = host.getBoundingClientRect();
    r.top < innerHeight + 400 && r.bottom > -400 ? start() : io.observe(host);
    const idle = () => (self.requestIdleCallback || setTimeout)(start);
    document.readyState == "complete" ? idle() : addEventListener("load", idle, { once: true });
  }
};
document.readyState == "loading" ? addEventListener("DOMContentLoaded", run, { once: true }) : run();
