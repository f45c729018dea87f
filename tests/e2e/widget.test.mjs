// The widget on the demo landing page, as a visitor uses it, in a real Chromium against the
// real local Worker and D1.
import { beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  base,
  d1,
  eventually,
  hostSite,
  publishedSnippets,
  putSite,
  root,
  shownAsHtml,
  snippet,
  snippetHash,
  uniqueEmail,
  warm,
  widgetPage,
  withBrowser,
} from "./support.mjs";

const ctx = withBrowser();
let page, form, demo;
beforeEach(() => ({ page, form, demo } = ctx));

const leadsFor = (email) =>
  d1(`SELECT id, site_id, email, name, company, message, consent_text_version, page_url, spam_reason FROM leads WHERE email = '${email}'`);

describe("on the demo landing page", () => {
  test("a visitor fills in the form, sees a thank-you, and the lead is stored", async () => {
    await page.goto(`${base}/`);
    await form.ready(demo.consent_text);
    const email = uniqueEmail("happy");
    await form.complete({ name: "Ada Lovelace", email, company: "Analytical Engines", message: "Pricing for 40 seats?" }, warm);

    assert.match(await form.thankYou.textContent(), /Thank you, Ada!/);
    assert.match(await form.thankYou.textContent(), new RegExp(email.replace(".", "\\.")));
    assert.match(await form.thankYou.textContent(), /\+1 555 010 0199/);
    assert.equal(
      await page.getByTestId("thank-you").locator("h2").evaluate((h) => h.getRootNode().activeElement === h),
      true,
      "focus moves to the thank-you heading",
    );

    const rows = leadsFor(email);
    assert.equal(rows.length, 1);
    assert.equal(rows[0].site_id, "demo");
    assert.equal(rows[0].name, "Ada Lovelace");
    assert.equal(rows[0].company, "Analytical Engines");
    assert.equal(rows[0].message, "Pricing for 40 seats?");
    assert.equal(rows[0].consent_text_version, demo.consent_version);
    assert.equal(rows[0].page_url, `${base}/`);
    assert.equal(rows[0].spam_reason, null, "a person is not taken for a bot");
  });

  test("a bot that fills in the hidden honeypot is thanked, and its lead kept as spam", async () => {
    await page.goto(`${base}/`);
    await form.ready(demo.consent_text);
    const honeypot = page.locator("leadglue-form input[name=website], input[name=website]").first();
    assert.equal(await honeypot.getAttribute("tabindex"), "-1", "out of the keyboard's way");
    assert.equal(
      await honeypot.evaluate((i) => i.closest("[aria-hidden]")?.getAttribute("aria-hidden")),
      "true",
      "hidden from assistive technology",
    );
    const box = await honeypot.evaluate((i) => i.getBoundingClientRect().right);
    assert.ok(box <= 0, "off-screen, out of sight");
    await honeypot.fill("http://cheap-pills.example", { force: true });
    const email = uniqueEmail("bot");
    await form.complete({ name: "Bot", email }, warm);
    assert.match(await form.thankYou.textContent(), /Thank you/);
    const rows = leadsFor(email);
    assert.equal(rows.length, 1);
    assert.equal(rows[0].spam_reason, "honeypot");
  });

  test("invalid input shows each error by its field, announced, with focus on the first", async () => {
    await page.goto(`${base}/`);
    await form.ready(demo.consent_text);
    await form.fill({ name: "Ada", email: "ada.example.com", consent: false });
    await form.submit();
    await page.locator("#lg-email-error").filter({ hasText: /./ }).waitFor();

    assert.equal(await form.describedError("email"), "Please enter a valid email address, like name@example.com.");
    assert.equal(await form.describedError("consent"), "Please tick the box so we may reply to you.");
    assert.equal(await form.describedError("name"), null, "a valid field has no error");
    assert.equal(await form.email.getAttribute("aria-invalid"), "true");
    assert.equal(await form.name.getAttribute("aria-invalid"), "false");
    assert.equal(await form.focusedId(), "lg-email");
    assert.equal(await form.announcer.getAttribute("aria-live"), "polite");
    assert.equal(await form.announcer.textContent(), "2 fields need attention.");
    // What the visitor typed is kept.
    assert.equal(await form.name.inputValue(), "Ada");
    assert.equal(await form.email.inputValue(), "ada.example.com");

    // Fixing the errors moves on; the errors go away.
    const email = uniqueEmail("fixed");
    await form.fill({ email });
    await form.submit();
    await page.getByTestId("q-timeline").waitFor();
    assert.equal(await form.describedError("email"), null);
    await form.qualify(warm);
    await form.submit();
    await form.until(form.thankYou);
    assert.equal(leadsFor(email).length, 1);
  });

  test("an empty form focuses the name field", async () => {
    await page.goto(`${base}/`);
    await form.ready(demo.consent_text);
    await form.submit();
    // Sent before the widget is there: it answers once it has taken over.
    await page.locator("#lg-name-error").filter({ hasText: /./ }).waitFor();
    assert.equal(await form.focusedId(), "lg-name");
    assert.equal(await form.describedError("name"), "Please enter your name.");
    assert.equal(await form.describedError("email"), "Please enter your email address.");
  });

  test("the form can be completed with the keyboard alone", async () => {
    await page.goto(`${base}/`);
    await form.ready(demo.consent_text);
    // Tab from the top of the page until the name field has focus.
    for (let i = 0; i < 20 && (await form.focusedId()) !== "lg-name"; i++) {
      await page.keyboard.press("Tab");
    }
    assert.equal(await form.focusedId(), "lg-name");
    const email = uniqueEmail("keyboard");
    await page.keyboard.type("Grace Hopper");
    await page.keyboard.press("Tab");
    await page.keyboard.type(email);
    await form.tabTo("consent");
    await page.keyboard.press("Space");
    await form.tabTo("submit");
    await page.keyboard.press("Enter");
    // Step 2: each radio group is one Tab stop; Space picks the focused (first) choice.
    for (const group of ["q-timeline-now", "q-role-decision_maker", "q-company_size-1_10", "q-follow_up-send_information"]) {
      await form.tabTo(group);
      await page.keyboard.press("Space");
    }
    await form.tabTo("submit");
    await page.keyboard.press("Enter");
    await form.until(form.thankYou);
    const rows = leadsFor(email);
    assert.equal(rows.length, 1);
    assert.equal(rows[0].name, "Grace Hopper");
  });

  test("a network failure that outlasts the automatic retries says so, keeps the input, and a retry delivers the lead once", async () => {
    await page.goto(`${base}/`);
    await form.ready(demo.consent_text);
    const email = uniqueEmail("offline");
    await page.route("**/v1/leads", (route) => route.abort("internetdisconnected"));
    await form.fill({ name: "Ada", email });
    await form.submit();
    await form.qualify(warm);
    await form.submit();
    await form.sendError.waitFor();
    assert.match(await form.sendError.textContent(), /could not send your request/);
    assert.equal(await form.email.inputValue(), email);
    assert.equal(leadsFor(email).length, 0);

    await page.unroute("**/v1/leads");
    await form.retryButton.click();
    await form.until(form.thankYou);
    assert.equal(leadsFor(email).length, 1);
  });
});

describe("style isolation", () => {
  const plainPage = (body) => `<!doctype html><html><head><meta charset="utf-8"></head><body>${body}</body></html>`;
  const tag = snippet("demo");
  const widgetProps = ["font-family", "font-size", "font-weight", "color", "background-color", "text-transform",
    "letter-spacing", "line-height", "display", "box-sizing", "border-top-style", "border-top-width",
    "border-top-color", "padding-top", "margin-top"];
  const widgetStyles = (p) =>
    p.getByTestId("leadglue").evaluate((root, props) => {
      const shadow = root.getRootNode();
      const pick = (el) => Object.fromEntries(props.map((k) => [k, getComputedStyle(el).getPropertyValue(k)]));
      return Object.fromEntries(
        ["div.lg", "h2", "label[for=lg-name]", "#lg-name", "#lg-message", "#lg-consent", "button"].map((sel) => [
          sel,
          pick(shadow.querySelector(sel)),
        ]),
      );
    }, widgetProps);

  test("the host page's hostile CSS does not change the form", async () => {
    await page.goto(`${base}/`);
    await form.ready(demo.consent_text);
    const onDemo = await widgetStyles(page);

    // The same widget on a page with no CSS at all, served from the same origin.
    await page.route(`${base}/plain.html`, (r) => r.fulfill({ contentType: "text/html", body: plainPage(tag) }));
    await page.goto(`${base}/plain.html`);
    await form.ready(demo.consent_text);
    const onPlain = await widgetStyles(page);
    assert.deepEqual(onDemo, onPlain);
    assert.equal(onDemo["label[for=lg-name]"].display, "block", "the host's `label {display:none}` stays out");
  });

  test("the form's CSS does not change the host page", async () => {
    const html = readFileSync(join(root, "edge/public/index.html"), "utf8");
    const hostProps = ["font-family", "font-size", "color", "background-color", "border-top-style", "display", "margin-top", "padding-top"];
    const hostStyles = (p) =>
      p.evaluate((props) => {
        const pick = (el) => Object.fromEntries(props.map((k) => [k, getComputedStyle(el).getPropertyValue(k)]));
        return Object.fromEntries(
          ["body", "h1", "p", "label", "#nl-email", "footer button", "a", "ul"].map((sel) => [sel, pick(document.querySelector(sel))]),
        );
      }, hostProps);

    await page.goto(`${base}/`);
    await form.ready(demo.consent_text);
    const withWidget = await hostStyles(page);
    const styleSheets = await page.evaluate(() => document.styleSheets.length);
    assert.ok(html.includes(tag), "the demo page has the snippet");
    await page.route(`${base}/without-widget.html`, (r) =>
      r.fulfill({ contentType: "text/html", body: html.replace(tag, "") }),
    );
    await page.goto(`${base}/without-widget.html`);
    const withoutWidget = await hostStyles(page);
    assert.deepEqual(withWidget, withoutWidget);
    assert.equal(
      styleSheets,
      await page.evaluate(() => document.styleSheets.length),
      "the widget adds no stylesheet to the host document",
    );
  });
});

describe("embedding", () => {
  const partnerPage = (siteId) => `<!doctype html><html><head><meta charset="utf-8"><title>Partner</title></head>
    <body><h1>Partner page</h1><div id="slot"></div>
    <script type="module" src="${base}/widget/v1/leadglue.js" data-site="${siteId}" data-target="slot"></script>
    </body></html>`;

  /** The partner's page shows the form of `siteId` in its #slot, and a lead sent there arrives. */
  const sendsFromPartner = async (siteId, partner) => {
    try {
      await putSite(siteId, { ...demo, allowed_origins: [partner.origin] });
      await page.goto(`${partner.origin}/`);
      await form.ready(demo.consent_text);
      assert.equal(await page.evaluate(() => !!document.getElementById("slot").shadowRoot), true, "rendered into data-target");

      const email = uniqueEmail(siteId);
      await form.complete({ name: "Ada", email }, warm);
      const rows = leadsFor(email);
      assert.equal(rows.length, 1);
      assert.equal(rows[0].site_id, siteId);
      assert.equal(rows[0].page_url, `${partner.origin}/`);
    } finally {
      await partner.close();
    }
  };

  test("a page on another origin embeds the form and its leads arrive (CORS)", async () => {
    const siteId = `cross-${Date.now().toString(36)}`;
    const partner = await hostSite({ "/": partnerPage(siteId) });
    await sendsFromPartner(siteId, partner);
  });

  test("a page on another origin with a strict policy embeds the form with the snippet in its head", async () => {
    const siteId = `snippet-${Date.now().toString(36)}`;
    const partner = await hostSite({
      "/": {
        body: `<!doctype html><html><head><meta charset="utf-8"><title>Partner</title>
          ${snippet(siteId, { edge: base, target: "slot" })}</head>
          <body><h1>Partner page</h1><div id="slot"></div></body></html>`,
        // What README tells marketers to allow, and nothing more: no inline code but the snippet's.
        headers: {
          "content-security-policy": `default-src 'none'; script-src ${snippetHash} ${base} 'wasm-unsafe-eval'; connect-src ${base}; style-src 'unsafe-inline'`,
        },
      },
    });
    await sendsFromPartner(siteId, partner);
  });

  // Pasted snippets stay in pages and cannot be updated: each one ever published must keep
  // working with the current loader and edge.
  for (const { name, source } of publishedSnippets) {
    test(`the snippet published as ${name} still shows the form, and its lead arrives`, async () => {
      await widgetPage(page, `/published-${name}`, "demo", undefined, source);
      await form.ready(demo.consent_text);
      const email = uniqueEmail("published");
      await form.complete({ name: "Ada", email }, warm);
      assert.equal(leadsFor(email).length, 1);
    });
  }

  test("on an origin the site does not allow, the form says so instead of failing silently", async () => {
    const siteId = `strict-${Date.now().toString(36)}`;
    const partner = await hostSite({ "/": partnerPage(siteId) });
    try {
      // The origin is known (another site allows it), so the Worker's refusal is readable.
      await putSite(`${siteId}-other`, { ...demo, allowed_origins: [partner.origin] });
      await putSite(siteId, { ...demo, allowed_origins: ["https://only-here.example"] });
      await page.goto(`${partner.origin}/`);
      const unavailable = page.getByTestId("unavailable");
      await unavailable.waitFor();
      assert.match(await unavailable.textContent(), /does not accept submissions from this page's origin/);
    } finally {
      await partner.close();
    }
  });

  // The form's HTML never answered, as over a stalled connection (browsers never give up on one).
  const stalledHtml = async () => {
    const asked = [];
    await page.route(/\/forms\/[^/]+\/html$/, (route) => asked.push(route));
    return asked;
  };
  const stillShowsTheForm = async (asked) => {
    await page.getByTestId("consent-text").filter({ hasText: demo.consent_text }).waitFor({ timeout: 30_000 });
    assert.equal(asked.length, 1, "the form's HTML was asked for");
    assert.equal(await shownAsHtml(page), false, "the widget shows the form itself");
    const email = uniqueEmail("html-stall");
    await form.complete({ name: "Ada", email }, warm);
    assert.equal(leadsFor(email).length, 1);
  };

  test("a request for the form's HTML that stalls is cut off after 10 s, and the widget shows the form itself", async () => {
    const asked = await stalledHtml();
    await page.goto(`${base}/`);
    await stillShowsTheForm(asked);
  });

  test("so it is with the plain script tag", async () => {
    const asked = await stalledHtml();
    const html = `<!doctype html><html><head><meta charset="utf-8"></head><body>
      <script type="module" src="/widget/v1/leadglue.js" data-site="demo"></script></body></html>`;
    await page.route(`${base}/tag.html`, (r) => r.fulfill({ contentType: "text/html", body: html }));
    await page.goto(`${base}/tag.html`);
    await stillShowsTheForm(asked);
  });

  test("the host page never waits for the form: far below the fold it shows after the page", async () => {
    const html = `<!doctype html><html><head><meta charset="utf-8"></head><body>
      <div style="height: 5000px">Long article</div>
      <script type="module" src="/widget/v1/leadglue.js" data-site="demo"></script></body></html>`;
    await page.route(`${base}/long.html`, (r) => r.fulfill({ contentType: "text/html", body: html }));
    await page.goto(`${base}/long.html`, { waitUntil: "load" });
    await form.ready(demo.consent_text);
    const { formStart, loadStart } = await page.evaluate(() => ({
      formStart: performance.getEntriesByType("resource").find((e) => e.name.endsWith("/html"))?.startTime,
      loadStart: performance.getEntriesByType("navigation")[0].loadEventStart,
    }));
    assert.ok(formStart > 0, "the form is fetched once the browser is idle");
    assert.ok(formStart >= loadStart, `the form (at ${formStart} ms) was not requested before the load event (${loadStart} ms)`);
  });
});

describe("the host page's layout", () => {
  // The form's HTML held back, as on a slow network: the page paints well before it comes (its
  // first paint came 92–350 ms after navigation started in the bench's cold loads).
  const late = () =>
    page.route(/\/forms\/[^/]+\/html$/, async (r) => {
      await new Promise((f) => setTimeout(f, 1_000));
      await r.continue();
    });
  // The page's layout shift (the Layout Instability API's scores, summed) once the form is in.
  const shiftOf = async (url) => {
    await page.addInitScript(() => {
      window.__shift = 0;
      new PerformanceObserver((list) => {
        for (const e of list.getEntries()) if (!e.hadRecentInput) window.__shift += e.value;
      }).observe({ type: "layout-shift", buffered: true });
    });
    await page.goto(url);
    await form.ready(demo.consent_text);
    // Two frames: the form's own, and one for the observer to have been told.
    return page.evaluate(
      () => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(() => done(window.__shift))))),
    );
  };
  const demoPage = readFileSync(join(root, "edge/public/index.html"), "utf8");
  const kept = "#contact { min-height: 81rem; }";

  test("the demo page keeps the form's space: nothing on it moves when the form comes in late", async () => {
    assert.ok(demoPage.includes(kept), "the demo page keeps the form's space as README says");
    await late();
    assert.equal(await shiftOf(`${base}/`), 0, "the features below the form stay where they were painted");
  });

  test("without that space kept, what follows the form moves down when it comes in", async () => {
    await late();
    await page.route(`${base}/unkept.html`, (r) =>
      r.fulfill({ contentType: "text/html", body: demoPage.replace(kept, "") }),
    );
    const shift = await shiftOf(`${base}/unkept.html`);
    assert.ok(shift > 0.05, `a layout shift of ${shift}`);
  });
});

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
