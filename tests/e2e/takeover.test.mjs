// The widget before its WebAssembly has come, and as it takes over the plain form the snippet
// showed, in a real Chromium against the real local Worker and D1 (split from widget.test.mjs:
// node's test runner gives each file two minutes).
import { beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { base, eventually, leadsFor, shownAsHtml, snippet, uniqueEmail, warm, withBrowser } from "./support.mjs";

const ctx = withBrowser();
let page, form, demo;
beforeEach(() => ({ page, form, demo } = ctx));

describe("before the widget loads", () => {
  const requested = (p, test) =>
    p.evaluate((source) => performance.getEntriesByType("resource").some((e) => new RegExp(source).test(e.name)), test.source);
  /** The form says it cannot be sent, where its errors go and to screen readers. */
  const saysItCannotBeSent = async () => {
    await form.cannotBeSent.waitFor();
    assert.match(await page.getByTestId("announcer").textContent(), /cannot be sent right now/, "and screen readers hear it");
  };
  /** Sent again once what was missing is back: the widget takes over with what was typed (the
   * name "Ada"), and `email`'s lead arrives once. */
  const sentAgainGoesThrough = async (email) => {
    await form.submit();
    await page.getByTestId("q-timeline").waitFor();
    assert.equal(await form.name.inputValue(), "Ada", "nothing typed is lost");
    assert.equal(await form.email.inputValue(), email);
    await form.qualify(warm);
    await form.submit();
    await form.until(form.thankYou);
    assert.equal(leadsFor(email).length, 1);
  };
  /** Until the widget has taken the plain form over. */
  const takenOver = () => eventually(async () => !(await shownAsHtml(page)), 15_000, "the widget taking over");
  /** Holds the widget's wasm back until the returned function is called. */
  const holdWasm = async (p) => {
    let release;
    const held = new Promise((resolve) => (release = resolve));
    await p.route("**/*.wasm", async (route) => {
      await held;
      await route.continue();
    });
    return release;
  };
  /** Where each visible control, label, text and button of the first step is, and what it says. */
  const layout = (p) =>
    p.getByTestId("leadglue").evaluate((el) =>
      [...el.querySelectorAll("h2, p, label, input, textarea, button, span")]
        .filter((e) => e.getClientRects().length > 0)
        .map((e) => {
          const r = e.getBoundingClientRect();
          const text = e.matches("input, textarea") ? `[${e.name}]` : e.textContent.trim();
          return `${e.tagName} ${text} @${Math.round(r.left)},${Math.round(r.top)} ${Math.round(r.width)}x${Math.round(r.height)}`;
        }),
    );

  test("a visitor who never touches the form downloads no WebAssembly", async () => {
    await page.goto(`${base}/`, { waitUntil: "load" });
    await form.ready(demo.consent_text);
    // Past the load event and an idle period, when the widget used to be fetched.
    await page.waitForTimeout(1500);
    assert.equal(await requested(page, /\.wasm$/), false, "no wasm");
    assert.equal(await requested(page, /\/assets\/.*\.js$/), false, "no glue");
    assert.equal(await shownAsHtml(page), true);

    await form.name.focus();
    await takenOver();
    assert.equal(await requested(page, /\.wasm$/), true, "the first touch fetches it");
  });

  test("the widget takes over what was typed and ticked, the focus and the caret, in the same layout", async () => {
    await page.goto(`${base}/`);
    await form.ready(demo.consent_text);
    const before = await layout(page);
    const release = await holdWasm(page);
    await form.email.fill("ada@example.com");
    await form.consent.check();
    await form.message.fill("Pricing for 40 seats?");
    await form.name.pressSequentially("Ada Lovelace");
    await page.keyboard.press("ArrowLeft");
    await page.keyboard.press("ArrowLeft");
    assert.equal(await shownAsHtml(page), true, "still the plain form while the wasm is held");

    release();
    await takenOver();
    assert.equal(await form.name.inputValue(), "Ada Lovelace");
    assert.equal(await form.email.inputValue(), "ada@example.com");
    assert.equal(await form.message.inputValue(), "Pricing for 40 seats?");
    assert.equal(await form.consent.isChecked(), true);
    assert.equal(await form.focusedId(), "lg-name");
    assert.equal(await form.name.evaluate((i) => [i.selectionStart, i.selectionEnd].join()), "10,10");
    // Typing goes on where it stopped.
    await page.keyboard.type("x");
    assert.equal(await form.name.inputValue(), "Ada Lovelaxce");

    // The same form, in the same place: compared with the fields emptied as they were.
    await form.name.fill("");
    await form.email.fill("");
    await form.message.fill("");
    await form.consent.uncheck();
    await form.name.blur();
    assert.deepEqual(await layout(page), before);
  });

  /** A press on the plain form's Next with the mouse: `down()` begins it, `up()` ends it. */
  const mousePress = {
    async down() {
      const box = await form.submitButton.boundingBox();
      await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
      await page.mouse.down();
    },
    up: () => page.mouse.up(),
  };
  /** The Space key held on `control`, as a keyboard user presses a button or ticks a box. */
  const spacePress = (control) => ({
    async down() {
      await control().focus();
      await page.keyboard.down(" ");
    },
    up: () => page.keyboard.up(" "),
  });
  /** What a Japanese input method does: "やま" composed, then "山田" committed. */
  const composedWord = (ime) => ({
    async down() {
      await form.name.fill("");
      await ime.send("Input.imeSetComposition", { text: "やま", selectionStart: 2, selectionEnd: 2 });
    },
    async up() {
      await ime.send("Input.imeSetComposition", { text: "やまだ", selectionStart: 3, selectionEnd: 3 });
      await ime.send("Input.insertText", { text: "山田" });
    },
  });

  /**
   * Opens `url`, fills the plain form in (`fill` overriding), begins `press` and lets the wasm
   * come: the widget must not take over while the press is under way. Then ends it.
   */
  const pressAcrossTheTakeover = async (url, press, fill = {}) => {
    await page.goto(url);
    await form.ready(demo.consent_text);
    const release = await holdWasm(page);
    await form.fill({ name: "Ada Lovelace", email: uniqueEmail("press"), ...fill });
    await press.down();
    const wasm = page.waitForResponse("**/*.wasm");
    release();
    await (await wasm).finished();
    // Time enough for the widget to take over (it did, mid-press, before it waited).
    await page.waitForTimeout(500);
    assert.equal(await shownAsHtml(page), true, "the widget waits for the press to end");
    await press.up();
  };
  /** The same with a press on Next, which must count: step 2 comes, with what was typed. */
  const nextAcrossTheTakeover = async (url, press) => {
    await pressAcrossTheTakeover(url, press);
    await form.until(page.getByTestId("q-timeline"));
    assert.equal(await form.name.inputValue(), "Ada Lovelace");
  };

  test("a click begun on the plain form as the widget arrives still counts", async () => {
    await nextAcrossTheTakeover(`${base}/`, mousePress);
  });

  test("so it does on a host page in quirks mode (no doctype)", async () => {
    const body = `<html><body><h1>An old landing page</h1>${snippet("demo")}</body></html>`;
    await page.route(`${base}/quirks.html`, (r) => r.fulfill({ contentType: "text/html", body }));
    await nextAcrossTheTakeover(`${base}/quirks.html`, mousePress);
  });

  test("so does the Space key held on the plain form's Next as the widget arrives", async () => {
    await nextAcrossTheTakeover(`${base}/`, spacePress(() => form.submitButton));
  });

  test("and so does the Space key held on the plain form's consent box: it is ticked", async () => {
    await pressAcrossTheTakeover(`${base}/`, spacePress(() => form.consent), { consent: false });
    await takenOver();
    assert.equal(await form.consent.isChecked(), true);
    assert.equal(await form.focusedId(), "lg-consent");
  });

  test("a keyboard user on the plain form's Next keeps the focus there through the takeover", async () => {
    await page.goto(`${base}/`);
    await form.ready(demo.consent_text);
    const release = await holdWasm(page);
    await form.fill({ name: "Ada Lovelace", email: uniqueEmail("focus") });
    await form.submitButton.focus();
    release();
    await takenOver();
    assert.equal(
      await form.inWidget((root) => root.activeElement?.dataset.testid ?? null),
      "submit",
      "the widget's Next has the focus",
    );
    // So Enter, which goes to the focused element, sends.
    await page.keyboard.press("Enter");
    await form.until(page.getByTestId("q-timeline"));
  });

  test("a word being composed with an input method as the widget arrives is neither cut off nor doubled", async () => {
    const ime = await page.context().newCDPSession(page);
    await pressAcrossTheTakeover(`${base}/`, composedWord(ime));
    await takenOver();
    assert.equal(await form.name.inputValue(), "山田");
    assert.equal(await form.focusedId(), "lg-name");
    // The next word, composed in the widget's own field.
    await ime.send("Input.imeSetComposition", { text: "はなこ", selectionStart: 3, selectionEnd: 3 });
    await ime.send("Input.insertText", { text: "花子" });
    assert.equal(await form.name.inputValue(), "山田花子");
  });

  test("a download of the widget that stalls is asked for again, and a form sent meanwhile goes through", async () => {
    await page.goto(`${base}/`);
    await form.ready(demo.consent_text);
    // The first request for the wasm is never answered, as over a stalled connection.
    const asked = [];
    await page.route("**/*.wasm", (route) => (asked.push(route), asked.length > 1 ? route.continue() : undefined));
    await form.fill({ name: "Ada", email: uniqueEmail("stall") });
    await form.submit();
    await form.until(page.getByTestId("q-timeline"));
    assert.equal(asked.length, 2, "asked for again once");
    assert.equal(await form.name.inputValue(), "Ada");
  });

  test("so is a download of the widget's script that stalls: under another address, since the first never ends", async () => {
    await page.goto(`${base}/`);
    await form.ready(demo.consent_text);
    const asked = [];
    await page.route(/\/assets\/glue-[^/]*\.js(\?|$)/, (route) => (asked.push(route), asked.length > 1 ? route.continue() : undefined));
    await form.fill({ name: "Ada", email: uniqueEmail("stall") });
    await form.submit();
    await form.until(page.getByTestId("q-timeline"));
    assert.equal(asked.length, 2, "asked for again once");
    assert.notEqual(asked[1].request().url(), asked[0].request().url());
    assert.equal(await form.name.inputValue(), "Ada");
  });

  test("a form sent while the widget cannot be fetched says so, and goes through when sent again", async () => {
    await page.goto(`${base}/`);
    await form.ready(demo.consent_text);
    await page.route("**/*.wasm", (route) => route.abort("internetdisconnected"));
    const email = uniqueEmail("nowasm");
    await form.fill({ name: "Ada", email });
    await form.submit();
    await saysItCannotBeSent();
    assert.equal(await shownAsHtml(page), true);

    await page.unroute("**/*.wasm");
    await sentAgainGoesThrough(email);
  });

  test("a form whose configuration cannot be fetched keeps what was typed, says so, and goes through when sent again", async () => {
    await page.goto(`${base}/`);
    await form.ready(demo.consent_text);
    // The widget's configuration (not its HTML fragment, already shown).
    const configuration = (url) => url.pathname === "/v1/sites/demo/forms/default";
    await page.route(configuration, (route) => route.abort("internetdisconnected"));
    const email = uniqueEmail("noconfig");
    await form.fill({ name: "Ada", email });
    await form.submit();
    await saysItCannotBeSent();
    assert.equal(await shownAsHtml(page), true);
    assert.equal(await form.name.inputValue(), "Ada", "the plain form and what was typed stay");

    await page.unroute(configuration);
    await sentAgainGoesThrough(email);
  });

  test("the snippet shows the form before the loader arrives, and holds what is typed and sent there", async () => {
    let release;
    const held = new Promise((resolve) => (release = resolve));
    await page.route("**/widget/v1/leadglue.js", async (route) => {
      await held;
      await route.continue();
    });
    await page.goto(`${base}/`);
    await form.ready(demo.consent_text);
    assert.equal(await requested(page, /leadglue\.js$/), false, "the loader has not arrived");
    const email = uniqueEmail("noloader");
    await form.fill({ name: "Ada", email });
    await form.submit();
    // Held, not sent by the browser itself (which would reload the page with the form's fields
    // in its address).
    await page.waitForTimeout(300);
    assert.equal(page.url(), `${base}/`);
    assert.equal(await shownAsHtml(page), true);

    release();
    await page.getByTestId("q-timeline").waitFor();
    assert.equal(await form.name.inputValue(), "Ada", "nothing typed is lost");
    await form.qualify(warm);
    await form.submit();
    await form.until(form.thankYou);
    assert.equal(leadsFor(email).length, 1);
  });

  test("a form sent while the loader cannot be had says so, and goes through when sent again", async () => {
    // What a blocker, a policy without the edge in script-src, or a dropped connection does to
    // the loader's module (retries included: a failed import is not fetched again by its URL).
    const loader = (url) => url.pathname === "/widget/v1/leadglue.js";
    await page.route(loader, (route) => route.abort("blockedbyclient"));
    await page.goto(`${base}/`);
    await form.ready(demo.consent_text);
    const email = uniqueEmail("loaderlost");
    await form.fill({ name: "Ada", email });
    await form.submit();
    await saysItCannotBeSent();
    assert.equal(page.url(), `${base}/`, "not sent by the browser itself");
    assert.equal(await shownAsHtml(page), true);
    await form.submit();
    await page.waitForTimeout(300);
    assert.equal(await shownAsHtml(page), true, "still blocked: still the plain form");
    assert.equal(leadsFor(email).length, 0);

    await page.unroute(loader);
    await sentAgainGoesThrough(email);
  });

  test("a form sent before the widget arrived goes on once it has: one step, then the lead", async () => {
    await page.goto(`${base}/`);
    await form.ready(demo.consent_text);
    const release = await holdWasm(page);
    const email = uniqueEmail("early");
    await form.fill({ name: "Ada", email });
    await form.submit();
    assert.equal(await shownAsHtml(page), true, "still the plain form while the wasm is held");
    release();
    await page.getByTestId("q-timeline").waitFor();
    assert.equal(await form.progress.textContent(), "Step 2 of 2");
    await form.qualify(warm);
    await form.submit();
    await form.until(form.thankYou);
    assert.equal(leadsFor(email).length, 1);
  });

});
