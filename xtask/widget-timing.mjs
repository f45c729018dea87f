// Widget timings for `cargo xtask bench`: cold loads of the demo landing page in headless
// Chromium, with and without the widget's script tag. Prints one JSON object on stdout.
//
// Measured in the page, without touching the product's code: an init script records when the
// loader first attaches a shadow root (the loader has run), and polls each animation frame for
// the moment the form's name field exists, is enabled and takes typing (interactive). The host
// page's own DOMContentLoaded and load come from the Navigation Timing entry, the widget's
// requests from Resource Timing. Every load starts cold, in a fresh browser context (an empty
// HTTP cache and no compiled code, like a visitor new to the site) of one running browser (like
// a visitor's, already started: launching a browser for each load measured the browser's own
// start-up, which competes for the two cores and only adds noise). The page with the widget is
// then loaded once more in the same context (a repeat visit, from cache).
//
// Environment: BASE (the Worker), CHROMIUM (the browser), RUNS (loads per variant, default 15).
import { chromium } from "playwright-core";
import { launchOptions } from "../tests/e2e/chromium.mjs";

const base = process.env.BASE;
const runs = Number(process.env.RUNS ?? 15);

const probe = () => {
  window.__lg = {};
  const attach = Element.prototype.attachShadow;
  Element.prototype.attachShadow = function (init) {
    window.__lg.loader ??= performance.now();
    return attach.call(this, init);
  };
  const poll = () => {
    for (const host of document.querySelectorAll("*")) {
      const input = host.shadowRoot?.querySelector("input[name=name]");
      if (input && !input.disabled && input.getBoundingClientRect().width > 0) {
        window.__lg.interactive = performance.now();
        return;
      }
    }
    requestAnimationFrame(poll);
  };
  requestAnimationFrame(poll);
  // When the widget's wasm module has been compiled and instantiated.
  for (const name of ["instantiateStreaming", "instantiate"]) {
    const original = WebAssembly[name];
    WebAssembly[name] = async function (...args) {
      const result = await original.apply(this, args);
      window.__lg.instantiated ??= performance.now();
      return result;
    };
  }
};

const options = launchOptions(process.env.CHROMIUM);
const browser = await chromium.launch(options);

async function load(withWidget) {
  const context = await browser.newContext({ viewport: options.viewport });
  try {
    const page = await context.newPage();
    await page.addInitScript(probe);
    // No request routing: Playwright's routing intercepts every request (adding a round trip
    // through this process to each) and turns off the browser's HTTP cache.
    const cold = await visit(page, withWidget);
    // The same visitor coming back (the next page of the site): the browser's cache now holds
    // the loader (5 minutes), the glue and wasm (immutable) and the configuration (1 minute).
    return withWidget ? { ...cold, repeat: await visit(page, withWidget) } : cold;
  } finally {
    await context.close();
  }
}

async function visit(page, withWidget) {
  // Without: the same page served the same way, its widget tag taken out (written by xtask).
  const url = withWidget ? `${base}/` : `${base}/bench/without-widget`;
  const response = await page.goto(url, { waitUntil: "load" });
  if (!response.ok()) throw new Error(`${url}: ${response.status()}`);
  if (withWidget) {
    await page.waitForFunction(() => window.__lg.interactive !== undefined, null, { timeout: 30_000 });
  }
  return await page.evaluate(() => {
    const nav = performance.getEntriesByType("navigation")[0];
    // When each of the widget's requests started and ended (the same request twice: first).
    const resource = (test) => {
      const r = performance.getEntriesByType("resource").find((e) => test(new URL(e.name)));
      return r ? { start: r.startTime, end: r.responseEnd } : null;
    };
    return {
      loader_file: resource((u) => u.pathname.endsWith("/leadglue.js")),
      glue_file: resource((u) => /\/assets\/.*\.js$/.test(u.pathname)),
      wasm_file: resource((u) => u.pathname.endsWith(".wasm")),
      config_request: resource((u) => /\/v1\/sites\/[^/]+\/forms\//.test(u.pathname)),
      instantiated: window.__lg.instantiated ?? null,
      dcl: nav.domContentLoadedEventEnd,
      load: nav.loadEventEnd,
      loader: window.__lg.loader ?? null,
      interactive: window.__lg.interactive ?? null,
    };
  });
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};
const spread = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return { min: s[0], median: median(s), max: s[s.length - 1] };
};

const withWidget = [];
const without = [];
// Alternate the variants so drift in the machine's load falls on both alike, and which goes
// first in a pair, so that neither always follows the other; each pair is compared on its own
// (xtask judges the DOMContentLoaded budget on the pairs' differences).
for (let i = 0; i < runs; i++) {
  if (i % 2 === 0) withWidget.push(await load(true));
  without.push(await load(false));
  if (i % 2 === 1) withWidget.push(await load(true));
}
await browser.close();
const pick = (list, key) => list.map((r) => r[key]);
console.log(
  JSON.stringify({
    runs,
    with_widget: {
      dcl_ms: spread(pick(withWidget, "dcl")),
      load_ms: spread(pick(withWidget, "load")),
      loader_ms: spread(pick(withWidget, "loader")),
      interactive_ms: spread(pick(withWidget, "interactive")),
      interactive_after_dcl_ms: spread(withWidget.map((r) => r.interactive - r.dcl)),
      repeat_visit_interactive_after_dcl_ms: spread(
        withWidget.map((r) => r.repeat.interactive - r.repeat.dcl),
      ),
      // Where the time goes: when each request started and ended, and the wasm instantiated.
      steps_ms: (
        [
          ["loader file requested", (r) => r.loader_file?.start],
          ["loader file received", (r) => r.loader_file?.end],
          ["glue requested", (r) => r.glue_file?.start],
          ["glue received", (r) => r.glue_file?.end],
          ["wasm requested", (r) => r.wasm_file?.start],
          ["wasm received", (r) => r.wasm_file?.end],
          ["wasm instantiated", (r) => r.instantiated],
          ["configuration requested", (r) => r.config_request?.start],
          ["configuration received", (r) => r.config_request?.end],
        ].map(([step, f]) => ({ step, ...spread(withWidget.map((r) => f(r) ?? NaN)) }))
      ),
    },
    without_widget: {
      dcl_ms: spread(pick(without, "dcl")),
      load_ms: spread(pick(without, "load")),
    },
    // DOMContentLoaded of each pair of loads: [with the widget, without].
    dcl_pairs_ms: withWidget.map((r, i) => [r.dcl, without[i].dcl]),
  }),
);
