// The widget on the demo landing page, as a visitor uses it, in a real Chromium against the
// real local Worker and D1.
import { beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  base,
  hostSite,
  leadsFor,
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
    await form.ready(demo.consent_text, { timeout: 30_000 });
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
