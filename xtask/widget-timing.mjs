// Widget timings for `cargo xtask bench`: cold loads of the demo landing page in headless
// Chromium, with and without the widget's snippet (and without it once more, as a control).
// Prints one JSON object on stdout.
//
// Measured in the page, without touching the product's code: an init script records when the
// widget's snippet first attaches a shadow root (the snippet has run), and polls each animation
// frame for the moment the form's name field exists, is enabled and takes typing (interactive),
// which it logs: the bench waits for that log rather than run anything in the page meanwhile. Its
// first call marks the page's first frame (with the widget or without), and the field's size,
// asked for in the frame the form becomes interactive, is mostly the form's first style and
// layout, which the probe times. The host page's own DOMContentLoaded and load come from the
// Navigation Timing entry, its first paint from Paint Timing, how far its content moved before
// the first interaction from the Layout Instability API, and the widget's requests from
// Resource Timing. Every load starts cold, in a fresh browser context (an empty
// HTTP cache and no compiled code, like a visitor new to the site) of one running browser (like
// a visitor's, already started: launching a browser for each load measured the browser's own
// start-up, which competes for the two cores and only adds noise). The page with the widget is
// then loaded once more in the same context (a repeat visit, from cache).
//
// The form comes first as static markup (an HTML fragment the snippet fetches), and the glue,
// wasm and configuration only on the visitor's first interaction with it. So once the form is
// interactive and the page idle, each visit with the widget checks that neither the glue nor the
// wasm was asked for yet, then focuses the name field and types into it, as a visitor would, and
// measures the takeover: from the first interaction (the first focusin, pointerdown or keydown
// inside a shadow root, as the page saw it) to the first frame where the widget's shadow root
// holds a name field and no element with a `data-render-token` (the static markup's) is left. It
// then checks that what was typed, and the focus, survived the takeover.
//
// Environment: BASE (the Worker), CHROMIUM (the browser), RUNS (loads per variant, default 30:
// with 15, medians of the same code moved by up to 10 ms from run to run).
import { chromium } from "playwright-core";
import { launchOptions } from "../tests/e2e/chromium.mjs";

const base = process.env.BASE;
const runs = Number(process.env.RUNS ?? 30);

// What the probe logs when the page first paints, when the form is interactive, and when the wasm
// has taken it over.
const LOGGED = "leadglue-bench: ";

const probe = (LOGGED) => {
  window.__lg = { layout_shift: 0 };
  // How far the page's content moved before the visitor's first interaction (the Layout
  // Instability API's scores, summed: the page's cumulative layout shift up to then). A form
  // that appears after the page's first paint, in space not kept for it, moves what follows it.
  new PerformanceObserver((list) => {
    for (const shift of list.getEntries()) {
      if (!shift.hadRecentInput && !(shift.startTime >= window.__lg.interaction)) {
        window.__lg.layout_shift += shift.value;
      }
    }
  }).observe({ type: "layout-shift", buffered: true });
  // The page's first paint may come after its load event: the bench waits for this log before
  // reading the page's figures.
  new PerformanceObserver((list, observer) => {
    if (list.getEntries().some((p) => p.name === "first-paint")) {
      console.debug(`${LOGGED}painted`);
      observer.disconnect();
    }
  }).observe({ type: "paint", buffered: true });
  const attach = Element.prototype.attachShadow;
  Element.prototype.attachShadow = function (init) {
    window.__lg.snippet ??= performance.now();
    const root = attach.call(this, init);
    // When the snippet puts the static markup in.
    new MutationObserver((_, observer) => {
      if (root.querySelector("[data-render-token]")) {
        window.__lg.markup ??= performance.now();
        observer.disconnect();
      }
    }).observe(root, { childList: true, subtree: true });
    return root;
  };
  const poll = () => {
    const start = performance.now();
    // The page's first frame: rendering starts no sooner, and the first animation frame
    // callbacks run at its start (with the widget or without).
    window.__lg.frame ??= start;
    window.__lg.frames = (window.__lg.frames ?? 0) + 1;
    for (const host of document.querySelectorAll("*")) {
      const input = host.shadowRoot?.querySelector("input[name=name]");
      if (input && !input.disabled && input.getBoundingClientRect().width > 0) {
        window.__lg.interactive = performance.now();
        window.__lg.interactive_frame = window.__lg.frames;
        // Mostly the style and layout the field's size asked for: the form's first.
        window.__lg.form_layout = window.__lg.interactive - start;
        // Tells the bench without it asking the page (see `logged`).
        console.debug(`${LOGGED}interactive`);
        return;
      }
    }
    requestAnimationFrame(poll);
  };
  requestAnimationFrame(poll);
  // The visitor's first interaction with a form (these events cross the shadow boundary), and
  // from then on, each frame, whether the wasm has taken the static markup over.
  const interacted = (event) => {
    if (window.__lg.interaction !== undefined) return;
    if (!event.composedPath().some((node) => node instanceof ShadowRoot)) return;
    window.__lg.interaction = performance.now();
    const taken = () => {
      for (const host of document.querySelectorAll("*")) {
        const root = host.shadowRoot;
        if (root?.querySelector("input[name=name]") && !root.querySelector("[data-render-token]")) {
          window.__lg.takeover = performance.now();
          console.debug(`${LOGGED}takeover`);
          return;
        }
      }
      requestAnimationFrame(taken);
    };
    requestAnimationFrame(taken);
  };
  for (const type of ["focusin", "pointerdown", "keydown"]) {
    addEventListener(type, interacted, { capture: true });
  }
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
    await page.addInitScript(probe, LOGGED);
    // No request routing: Playwright's routing intercepts every request (adding a round trip
    // through this process to each) and turns off the browser's HTTP cache.
    const cold = await visit(page, withWidget);
    // The same visitor coming back (the next page of the site): the browser's cache now holds
    // the loader (5 minutes), the glue and wasm (immutable) and the configuration (1 minute),
    // fetched on the first visit's interaction; the HTML fragment is never cached (no-store).
    return withWidget ? { ...cold, repeat: await visit(page, withWidget) } : cold;
  } finally {
    await context.close();
  }
}

// How long a visit waits for the takeover: past the loader's stall limit (a download without a
// byte for 10 s is cut off and asked for again), so that a takeover that came through a stall
// is counted as the slow one it is (xtask reports those apart), not as none.
const TAKEOVER_WAIT_MS = 30_000;

// What the visitor types into the name field.
const TYPED = "Ada";
// The widget's requests, by path (as patterns: functions cannot cross into the page). The form's
// HTML fragment and its configuration share a prefix.
const REQUESTS = {
  loader: String.raw`\/leadglue\.js$`,
  html: String.raw`\/v1\/sites\/[^/]+\/forms\/[^/]+\/html$`,
  glue: String.raw`\/assets\/.*\.js$`,
  wasm: String.raw`\.wasm$`,
  config: String.raw`\/v1\/sites\/[^/]+\/forms\/[^/]+$`,
};

/**
 * When the probe logs `what`. Nothing may run in the page while the widget is being measured:
 * Playwright's waitForFunction would first compile its injected script there, ~40 ms of a cold
 * page's main thread (seen in traces), just when the snippet is showing the form.
 */
function logged(page, what, timeout) {
  const seen = page.waitForEvent("console", { predicate: (m) => m.text() === LOGGED + what, timeout });
  seen.catch(() => {}); // awaited by the caller, later
  return seen;
}

async function visit(page, withWidget) {
  // Without: the same page served the same way, its widget tag taken out (written by xtask).
  const url = withWidget ? `${base}/` : `${base}/bench/without-widget`;
  const interactive = withWidget ? logged(page, "interactive", 30_000) : null;
  const painted = logged(page, "painted", 30_000);
  const response = await page.goto(url, { waitUntil: "load" });
  if (!response.ok()) throw new Error(`${url}: ${response.status()}`);
  await painted;
  let tookOver = false;
  if (withWidget) {
    await interactive;
    // A visitor reads before typing; by then a widget that loaded its wasm when the page is
    // idle, rather than on the first interaction, would have asked for it.
    await page.evaluate(
      () =>
        new Promise((done) =>
          requestIdleCallback(() => setTimeout(done, 200), { timeout: 2_000 }),
        ),
    );
    // Playwright's locators pierce open shadow roots. The time just before focusing is the
    // fallback for the interaction's start, should the page see no event.
    await page.evaluate(() => (window.__lg.typing = performance.now()));
    const takeover = logged(page, "takeover", TAKEOVER_WAIT_MS);
    await page.getByTestId("name").focus();
    await page.keyboard.type(TYPED);
    try {
      await takeover;
      tookOver = true;
    } catch (e) {
      if (e.name !== "TimeoutError") throw e;
    }
  }
  const measured = await page.evaluate(
    ({ tests, typed }) => {
      const test = Object.fromEntries(
        Object.entries(tests).map(([k, source]) => [k, new RegExp(source)]),
      );
      const nav = performance.getEntriesByType("navigation")[0];
      const resources = performance.getEntriesByType("resource");
      // When each of the widget's requests started and ended (the same request twice: first).
      const resource = (kind) => {
        const r = resources.find((e) => test[kind].test(new URL(e.name).pathname));
        return r ? { start: r.startTime, end: r.responseEnd } : null;
      };
      const lg = window.__lg;
      const interaction = lg.interaction ?? lg.typing ?? null;
      // The glue, wasm or configuration asked for before the first interaction (Resource
      // Timing has every request, finished by now, with the time it started).
      const early =
        interaction === null
          ? []
          : resources
              .filter((e) => e.startTime < interaction)
              .map((e) => new URL(e.name).pathname)
              .filter((p) => test.glue.test(p) || test.wasm.test(p) || test.config.test(p));
      // The widget's name field, after the takeover.
      let field = null;
      for (const host of document.querySelectorAll("*")) {
        const input = host.shadowRoot?.querySelector("input[name=name]");
        if (input) {
          field = { value: input.value, focused: host.shadowRoot.activeElement === input };
          break;
        }
      }
      return {
        loader_file: resource("loader"),
        html_request: resource("html"),
        glue_file: resource("glue"),
        wasm_file: resource("wasm"),
        config_request: resource("config"),
        instantiated: lg.instantiated ?? null,
        dcl: nav.domContentLoadedEventEnd,
        load: nav.loadEventEnd,
        // When the page's first pixels were shown (Paint Timing; rAF's first frame above may
        // come well before them on a loaded machine).
        first_paint: performance.getEntriesByType("paint").find((p) => p.name === "first-paint")
          ?.startTime,
        layout_shift: lg.layout_shift,
        frame: lg.frame ?? null,
        // Which of the page's frames the form was first interactive in (1: the page's first).
        interactive_frame: lg.interactive_frame ?? null,
        form_layout: lg.form_layout ?? null,
        snippet: lg.snippet ?? null,
        markup: lg.markup ?? null,
        interactive: lg.interactive ?? null,
        interaction,
        takeover: lg.takeover ?? null,
        early_requests: early,
        wasm_before_interaction: early.some((p) => test.glue.test(p) || test.wasm.test(p)),
        name_value: field?.value ?? null,
        typed_value_kept: field?.value === typed,
        focus_kept: field?.focused ?? false,
      };
    },
    { tests: REQUESTS, typed: TYPED },
  );
  return { ...measured, took_over: withWidget ? tookOver : null };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};
// Over the loads that have the figure (a takeover that never came has none).
const spread = (xs) => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  return { min: s[0], median: median(s), max: s[s.length - 1] };
};
// b to a, when both happened.
const since = (a, b) => (a == null || b == null ? NaN : a - b);

const withWidget = [];
const without = [];
// The page without the widget loaded a second time in each round: a control. Its pairs with the
// first load differ only by chance, so their shift is what the bench measures of a page that
// did not change: its noise.
const again = [];
// Alternate the variants so drift in the machine's load falls on all alike, and the order in a
// round, so that none always follows another; each pair (with the widget and without, and
// without and again) is of adjacent loads and compared on its own (xtask judges the
// DOMContentLoaded budget on the pairs' differences).
for (let i = 0; i < runs; i++) {
  if (i % 2 === 0) withWidget.push(await load(true));
  else again.push(await load(false));
  without.push(await load(false));
  if (i % 2 === 1) withWidget.push(await load(true));
  else again.push(await load(false));
}
await browser.close();
const pick = (list, key) => list.map((r) => r[key]);
// What xtask checks of each visit: nothing of the wasm's before the first interaction, a
// takeover, and the typed name (and the focus) carried over.
const checks = (r) => ({
  wasm_before_interaction: r.wasm_before_interaction,
  early_requests: r.early_requests,
  took_over: r.took_over,
  takeover_ms: since(r.takeover, r.interaction),
  typed_value_kept: r.typed_value_kept,
  name_value: r.name_value,
  focus_kept: r.focus_kept,
});
const repeats = withWidget.map((r) => r.repeat);
console.log(
  JSON.stringify({
    runs,
    typed: TYPED,
    with_widget: {
      dcl_ms: spread(pick(withWidget, "dcl")),
      load_ms: spread(pick(withWidget, "load")),
      snippet_ms: spread(pick(withWidget, "snippet")),
      interactive_ms: spread(pick(withWidget, "interactive")),
      interactive_after_dcl_ms: spread(withWidget.map((r) => since(r.interactive, r.dcl))),
      // What the widget itself adds: the host's first frame comes first, with it or without.
      first_frame_ms: spread(pick(withWidget, "frame")),
      first_frame_after_dcl_ms: spread(withWidget.map((r) => since(r.frame, r.dcl))),
      interactive_after_first_frame_ms: spread(withWidget.map((r) => since(r.interactive, r.frame))),
      // Loads whose form was interactive in the page's first frame.
      in_first_frame: withWidget.filter((r) => r.interactive_frame === 1).length,
      form_layout_ms: spread(pick(withWidget, "form_layout")),
      first_paint_ms: spread(pick(withWidget, "first_paint")),
      layout_shift: spread(pick(withWidget, "layout_shift")),
      // Loads where the page's content moved before the first interaction.
      shifted_loads: withWidget.filter((r) => r.layout_shift > 0).length,
      // From the first interaction to the wasm's form in place of the static markup.
      takeover_ms: spread(withWidget.map((r) => since(r.takeover, r.interaction))),
      repeat_visit_interactive_after_dcl_ms: spread(
        repeats.map((r) => since(r.interactive, r.dcl)),
      ),
      repeat_visit_takeover_ms: spread(repeats.map((r) => since(r.takeover, r.interaction))),
      // Where the time goes, ms from navigation start: when each request started and ended.
      steps_ms: (
        [
          ["loader file requested", (r) => r.loader_file?.start],
          ["loader file received", (r) => r.loader_file?.end],
          ["HTML fragment requested", (r) => r.html_request?.start],
          ["HTML fragment received", (r) => r.html_request?.end],
          ["the page's first frame", (r) => r.frame],
          ["the page's first paint", (r) => r.first_paint],
          ["HTML fragment in the page", (r) => r.markup],
          ["form interactive", (r) => r.interactive],
          ["first interaction (the bench's, once the page is idle)", (r) => r.interaction],
        ].map(([step, f]) => ({ step, ...spread(withWidget.map((r) => f(r) ?? NaN)) }))
      ),
      // And after the first interaction, ms from it.
      interaction_steps_ms: (
        [
          ["glue requested", (r) => r.glue_file?.start],
          ["glue received", (r) => r.glue_file?.end],
          ["wasm requested", (r) => r.wasm_file?.start],
          ["wasm received", (r) => r.wasm_file?.end],
          ["wasm instantiated", (r) => r.instantiated],
          ["configuration requested", (r) => r.config_request?.start],
          ["configuration received", (r) => r.config_request?.end],
          ["takeover (static markup replaced)", (r) => r.takeover],
        ].map(([step, f]) => ({
          step,
          ...spread(withWidget.map((r) => since(f(r), r.interaction))),
        }))
      ),
      loads: withWidget.map(checks),
      repeat_loads: repeats.map(checks),
    },
    without_widget: {
      dcl_ms: spread(pick(without, "dcl")),
      load_ms: spread(pick(without, "load")),
      first_frame_ms: spread(pick(without, "frame")),
      first_frame_after_dcl_ms: spread(without.map((r) => since(r.frame, r.dcl))),
      first_paint_ms: spread(pick(without, "first_paint")),
      layout_shift: spread(pick(without, "layout_shift")),
      shifted_loads: without.filter((r) => r.layout_shift > 0).length,
    },
    // DOMContentLoaded of each pair of loads: [with the widget, without].
    dcl_pairs_ms: withWidget.map((r, i) => [r.dcl, without[i].dcl]),
    // And of the control's pairs: [again, without].
    control_pairs_ms: again.map((r, i) => [r.dcl, without[i].dcl]),
    // The same for the page's first paint.
    first_paint_pairs_ms: withWidget.map((r, i) => [r.first_paint, without[i].first_paint]),
    first_paint_control_pairs_ms: again.map((r, i) => [r.first_paint, without[i].first_paint]),
  }),
);
