// Self-qualification in the browser: the two-step flow, conditional questions, the adaptive
// thank-you, and first-touch attribution across pages.
import { beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { base, d1, putForm, putSite, uniqueEmail, withBrowser } from "./support.mjs";

const ctx = withBrowser();
let page, form, demo;
beforeEach(() => ({ page, form, demo } = ctx));

const lead = (email) =>
  d1(`SELECT grade, score, channel, attribution, answers, page_url, form_id FROM leads WHERE email = '${email}'`)[0];

describe("the adaptive flow on the demo page", () => {
  test("a hot visitor is invited to call now, with the phone and a booking link", async () => {
    await page.goto(`${base}/`);
    await form.ready(demo.consent_text);
    const email = uniqueEmail("hot");
    await form.fill({ name: "Ada Lovelace", email });
    await form.submit();
    assert.equal(await form.progress.textContent(), "Step 2 of 2");
    await form.qualify({ timeline: "now", role: "decision_maker", size: "201_1000", interest: ["pricing"], followUp: "book_demo" });
    // Already hot before sending: the phone number is offered on the spot.
    await page.getByTestId("call-hint").waitFor();
    await form.submit();
    await form.until(form.thankYou);

    assert.equal(await form.thankYou.getAttribute("data-next-step"), "call_now");
    assert.equal(await page.getByTestId("call").getAttribute("href"), "tel:+15550100199");
    assert.equal(await page.getByTestId("book").getAttribute("href"), demo.booking_url);
    const row = lead(email);
    assert.equal(row.grade, "hot");
    assert.equal(row.score, 100);
    assert.deepEqual(JSON.parse(row.answers).interest, ["pricing"]);
  });

  test("a browsing visitor gets a friendly note with no pressure, and still a number to call", async () => {
    await page.goto(`${base}/`);
    await form.ready(demo.consent_text);
    const email = uniqueEmail("browsing");
    await form.complete({ name: "Bea", email }, { timeline: "browsing", role: "researcher", size: "1_10", followUp: "send_information" });
    assert.equal(await form.thankYou.getAttribute("data-next-step"), "browse");
    assert.match(await form.thankYou.textContent(), /no pressure/);
    assert.equal(await page.getByTestId("call").getAttribute("href"), "tel:+15550100199");
    assert.equal(await page.getByTestId("book").count(), 0);
    assert.equal(lead(email).grade, "cold");
  });

  test("back and forward keep every answer, and unanswered questions are flagged", async () => {
    await page.goto(`${base}/`);
    await form.ready(demo.consent_text);
    await form.fill({ name: "Cy", email: uniqueEmail("back") });
    await form.submit();
    await form.answer("timeline", "1_year");
    await form.answer("interest", "integrations", "support");
    await form.submit();
    // Role, size and follow-up are required: flagged, focus on the first.
    assert.equal(await form.describedError("q-role-decision_maker"), "Please answer this question.");
    assert.equal(await form.focusedId(), "");
    assert.equal(
      await page.getByTestId("q-role-decision_maker").evaluate((el) => el.getRootNode().activeElement === el),
      true,
    );

    await form.backButton.click();
    assert.equal(await form.progress.textContent(), "Step 1 of 2");
    assert.equal(await form.name.inputValue(), "Cy");
    await form.submit();
    assert.equal(await page.getByTestId("q-timeline-1_year").isChecked(), true);
    assert.equal(await page.getByTestId("q-interest-integrations").isChecked(), true);
    assert.equal(await page.getByTestId("q-interest-support").isChecked(), true);
  });

  test("asking to be called without a number brings the visitor back to the phone field", async () => {
    await page.goto(`${base}/`);
    await form.ready(demo.consent_text);
    const email = uniqueEmail("callme");
    await form.fill({ name: "Dee", email });
    await form.submit();
    await form.qualify({ timeline: "3_months", role: "influencer", size: "11_50", followUp: "call_me" });
    await form.submit();
    assert.equal(await form.progress.textContent(), "Step 1 of 2");
    assert.equal(await form.focusedId(), "lg-phone");
    assert.equal(await form.describedError("phone"), "Please give us a number to call you on.");
    await page.getByTestId("phone").fill("+44 20 7946 0958");
    await form.submit();
    await form.submit();
    await form.until(form.thankYou);
    assert.equal(await form.thankYou.getAttribute("data-next-step"), "call_now");
  });
});

describe("double opt-in", () => {
  test("visitors are told to confirm their address before anything else is sent", async () => {
    const siteId = `optin-${Date.now().toString(36)}`;
    await putSite(siteId, { ...demo, double_opt_in: true });
    await page.route((url) => url.pathname === "/optin.html", (r) =>
      r.fulfill({
        contentType: "text/html",
        body: `<!doctype html><meta charset="utf-8"><script type="module" src="/widget/v1/leadglue.js" data-site="${siteId}"></script>`,
      }),
    );
    await page.goto(`${base}/optin.html`);
    await form.ready(demo.consent_text);
    const email = uniqueEmail("optin");
    await form.complete({ name: "Gil", email }, { timeline: "1_year", role: "influencer", size: "11_50", followUp: "send_information" });
    assert.match(await page.getByTestId("confirm-note").textContent(), new RegExp(`emailed ${email.replace(".", "\\.")} a link to confirm`));
  });
});

describe("a marketer's own form", () => {
  test("conditional questions appear and disappear, and only what is shown is stored", async () => {
    const formId = `quote${Date.now().toString(36)}`;
    await putForm("demo", formId, {
      title: "Get a quote",
      questions: [
        { id: "budget", label: "Is budget approved?", type: "single_choice", required: true,
          options: [{ value: "yes", label: "Yes", points: 50 }, { value: "no", label: "Not yet" }] },
        { id: "approver", label: "Who signs off?", type: "short_text", required: true,
          show_if: { question: "budget", equals: "yes" }, points: 10 },
      ],
      thresholds: { hot: 60, warm: 30 },
    });
    await page.route(`${base}/quote.html`, (r) =>
      r.fulfill({
        contentType: "text/html",
        body: `<!doctype html><meta charset="utf-8"><script type="module" src="/widget/v1/leadglue.js" data-site="demo" data-form="${formId}"></script>`,
      }),
    );
    await page.goto(`${base}/quote.html`);
    await form.ready(demo.consent_text);
    assert.equal(await page.getByTestId("leadglue").locator("h2").first().textContent(), "Get a quote");
    const email = uniqueEmail("quote");
    await form.fill({ name: "Eve", email });
    await form.submit();

    const approver = page.getByTestId("q-approver");
    assert.equal(await approver.count(), 0, "hidden until budget = yes");
    await form.answer("budget", "yes");
    await approver.waitFor();
    await approver.fill("The CFO");
    await form.answer("budget", "no");
    await approver.waitFor({ state: "detached" });
    await form.answer("budget", "yes");
    assert.equal(await approver.inputValue(), "The CFO", "the answer comes back with the question");
    await form.submit();
    await form.until(form.thankYou);
    const row = lead(email);
    assert.equal(row.form_id, formId);
    assert.equal(row.grade, "hot");
    assert.deepEqual(JSON.parse(row.answers), { approver: "The CFO", budget: "yes" });
  });
});

describe("attribution", () => {
  test("UTM parameters on the landing page are kept when the visitor submits on another page", async () => {
    // A new visitor: forget the first touch earlier tests in this browser left behind (on a
    // page of the site that runs no widget).
    await page.goto(`${base}/widget/v1/leadglue.js`);
    await page.evaluate(() => localStorage.clear());
    await page.goto(`${base}/?utm_source=newsletter&utm_medium=email&utm_campaign=launch`);
    await form.ready(demo.consent_text);
    await page.route(`${base}/pricing.html`, (r) =>
      r.fulfill({
        contentType: "text/html",
        body: `<!doctype html><meta charset="utf-8"><h1>Pricing</h1><script type="module" src="/widget/v1/leadglue.js" data-site="demo"></script>`,
      }),
    );
    await page.goto(`${base}/pricing.html`);
    await form.ready(demo.consent_text);
    const email = uniqueEmail("utm");
    await form.complete({ name: "Fay", email }, { timeline: "1_year", role: "influencer", size: "11_50", followUp: "send_information" });

    const row = lead(email);
    assert.equal(row.channel, "email");
    assert.equal(row.page_url, `${base}/pricing.html`);
    const attribution = JSON.parse(row.attribution);
    assert.equal(attribution.utm_campaign, "launch");
    assert.equal(attribution.landing_page, `${base}/?utm_source=newsletter&utm_medium=email&utm_campaign=launch`);
  });

  test("a site can turn first-touch attribution off: nothing is kept in localStorage", async () => {
    const siteId = `nostore-${Date.now().toString(36)}`;
    await putSite(siteId, { ...demo, first_touch_attribution: false });
    await page.route((url) => url.pathname === "/private.html", (r) =>
      r.fulfill({
        contentType: "text/html",
        body: `<!doctype html><meta charset="utf-8"><script type="module" src="/widget/v1/leadglue.js" data-site="${siteId}"></script>`,
      }),
    );
    await page.goto(`${base}/private.html?utm_source=x`);
    await form.ready(demo.consent_text);
    const keys = await page.evaluate(() => Object.keys(localStorage));
    assert.deepEqual(keys.filter((k) => k.includes(siteId)), []);
  });
});
