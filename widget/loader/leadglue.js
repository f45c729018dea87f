// leadglue loader: the one script a marketer embeds.
//   <script type="module" async src="https://EDGE/widget/v1/leadglue.js" data-site="SITE_ID"></script>
// (`async`: a plain module script is deferred, and deferred scripts hold up the page's
// DOMContentLoaded until they have been fetched and run; an async one holds up nothing.)
// It opens a Shadow DOM where each such tag stands (or in the element whose id is in
// data-target; data-form picks one of the site's forms) and loads the form's WebAssembly only when a form nears the viewport or the page
// has loaded and the browser is idle, so the host page never waits for it.
// __GLUE__ and __WASM__ are replaced at build time with content-hashed file names,
// __DEFAULT_FORM__ with the built-in form's id (shared::form::DEFAULT_FORM_ID).

const here = import.meta.url;
const origin = new URL(here).origin;
let app;
// The glue and the wasm are asked for together, not one after the other.
const load = () => {
  if (!app) {
    const wasm = fetch(new URL("__WASM__", here));
    app = import(new URL("__GLUE__", here).href).then(async (m) => {
      await m.default({ module_or_path: wasm });
      return m;
    });
  }
  return app;
};

// A module runs once however many tags name it, so one run serves every tag. An async one may
// run before the page is parsed: then it waits for the tags, targets and <body> to exist.
const run = () => {
for (const tag of document.querySelectorAll("script[data-site]")) {
  if (tag.src !== here) continue;
  const target = tag.dataset.target && document.getElementById(tag.dataset.target);
  const host = target || document.createElement("div");
  // A tag in <head> cannot show anything where it stands: the form then goes at the end of
  // <body> (which exists by now: see `run` below).
  if (!target) tag.closest("head") ? document.body.append(host) : tag.before(host);
  const root = host.attachShadow({ mode: "open" }).appendChild(document.createElement("div"));
  let seen;
  const start = () => {
    if (seen) return;
    seen = 1;
    io.disconnect();
    // The form's configuration is asked for now too, rather than by the wasm once it runs (a
    // round trip less before the form shows).
    const site = tag.dataset.site;
    const form = tag.dataset.form || "__DEFAULT_FORM__";
    const config = fetch(`${origin}/v1/sites/${site}/forms/${form}`);
    config.catch(() => {}); // a failure is the widget's to report, once it runs
    load().then((m) => m.mount(root, site, form, origin, config));
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
