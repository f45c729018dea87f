// What people read, against WCAG 2.2 A and AA as axe-core checks it automatically: the form from
// first sight to the thank-you (the static markup the snippet shows, the widget's first step,
// each step with its errors, the offer of a call and the three thank-yous), the form that cannot
// be sent, the welcome email it brings and the pages its unsubscribe link opens, and double
// opt-in's note, confirmation email and pages. Of the demo page only the widget's shadow root
// is checked: the page around it stands in for a marketer's. (What axe cannot judge, such as the
// order of focus and what is announced, has tests of its own in widget.test.mjs.)
import { beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import {
  base,
  eventually,
  putSite,
  root,
  shownAsHtml,
  uniqueEmail,
  warm,
  widgetPage,
  withBrowser,
} from "./support.mjs";

const ctx = withBrowser();
let page, form, demo;
beforeEach(() => ({ page, form, demo } = ctx));

const axeSource = readFileSync(join(root, "node_modules/axe-core/axe.min.js"), "utf8");
const RULES = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"];

/**
 * What axe finds wrong, one line per element: "rule: element: what to fix". In the widget when
 * the page has one, else in the whole page. axe is put in through DevTools, which the pages'
 * content security policies do not govern.
 */
async function violations(p) {
  await p.evaluate(axeSource);
  return p.evaluate(async (tags) => {
    const host = [...document.querySelectorAll("*")].find((el) => el.shadowRoot);
    const { violations, passes } = await globalThis.axe.run(
      host ? { include: [host] } : document,
      { runOnly: { type: "tag", values: tags }, resultTypes: ["violations"] },
    );
    if (passes.length === 0) throw new Error("axe checked nothing");
    return violations.flatMap((v) =>
      v.nodes.map((n) => `${v.id}: ${n.target.flat().join(" > ")}: ${n.failureSummary.replace(/\s+/g, " ")}`),
    );
  }, RULES);
}

/** The emails the provider stand-in received for `to`, oldest first. */
const mailTo = (to) => {
  const dir = process.env.LEADGLUE_MAIL_DIR;
  return readdirSync(dir)
    .filter((f) => f.endsWith(".json"))
    .sort()
    .map((f) => JSON.parse(readFileSync(join(dir, f), "utf8")))
    .filter((r) => r.email?.to?.[0] === to)
    .map((r) => r.email);
};

describe("accessibility (axe-core, WCAG 2.2 A and AA)", () => {
  test("the form breaks no rule from first sight to the thank-you", async () => {
    await page.goto(`${base}/`);
    await form.ready(demo.consent_text);
    assert.equal(await shownAsHtml(page), true, "the static markup, before any interaction");
    assert.deepEqual(await violations(page), [], "the static markup");

    await form.name.focus();
    await eventually(async () => !(await shownAsHtml(page)), 15_000, "the widget taking over");
    assert.deepEqual(await violations(page), [], "the widget's first step");

    await form.submit();
    await page.locator("#lg-name-error").filter({ hasText: /./ }).waitFor();
    assert.deepEqual(await violations(page), [], "the first step with its errors");

    await form.fill({ name: "Ada Lovelace", email: uniqueEmail("a11y") });
    await form.submit();
    await page.getByTestId("q-timeline").waitFor();
    assert.deepEqual(await violations(page), [], "the qualification step");

    await form.submit();
    await page.locator("#lg-q-timeline-error").filter({ hasText: /./ }).waitFor();
    assert.deepEqual(await violations(page), [], "the qualification step with its errors");

    // A hot visitor: the phone number offered on the spot, then a thank-you with it and a
    // booking link.
    await form.qualify({ timeline: "now", role: "decision_maker", size: "201_1000", followUp: "book_demo" });
    await page.getByTestId("call-hint").waitFor();
    assert.deepEqual(await violations(page), [], "the qualification step offering a call");
    await form.submit();
    await form.until(form.thankYou);
    assert.equal(await form.thankYou.getAttribute("data-next-step"), "call_now");
    assert.deepEqual(await violations(page), [], "the thank-you");
  });

  test("the welcome email, and the pages its unsubscribe link opens, break no rule", async () => {
    await page.goto(`${base}/`);
    await form.ready(demo.consent_text);
    const email = uniqueEmail("a11y.mail");
    await form.complete({ name: "Ada Lovelace", email, message: "Pricing for 40 seats?" }, warm);
    assert.equal(await form.thankYou.getAttribute("data-next-step"), "expect_email");
    assert.deepEqual(await violations(page), [], "the thank-you of a visitor in no hurry");
    let welcome;
    await eventually(() => (welcome = mailTo(email)[0]), 15_000, "the welcome email");

    await page.setContent(welcome.html);
    assert.deepEqual(await violations(page), [], "the welcome email");

    const link = welcome.headers["List-Unsubscribe"].slice(1, -1);
    await page.goto(link);
    assert.deepEqual(await violations(page), [], "the page with the button");
    await page.getByRole("button", { name: "Unsubscribe" }).click();
    await page.getByRole("heading").filter({ hasText: /unsubscribed/i }).waitFor();
    assert.deepEqual(await violations(page), [], "the page that says it is done");

    await page.goto(`${base}/v1/unsubscribe/not-a-link`);
    assert.deepEqual(await violations(page), [], "the page for a broken link");
  });

  test("the form breaks no rule for a visitor just browsing, nor when it cannot be sent", async () => {
    await page.goto(`${base}/`);
    await form.ready(demo.consent_text);
    const browsing = { timeline: "browsing", role: "researcher", size: "1_10", followUp: "send_information" };
    await form.complete({ name: "Bea", email: uniqueEmail("a11y.browse") }, browsing);
    assert.equal(await form.thankYou.getAttribute("data-next-step"), "browse");
    assert.deepEqual(await violations(page), [], "the thank-you of a visitor just browsing");

    // Sent before the widget could be fetched (offline, say): the static markup says so.
    await page.goto(`${base}/`);
    await form.ready(demo.consent_text);
    await page.route("**/*.wasm", (route) => route.abort("internetdisconnected"));
    await form.fill({ name: "Ada", email: uniqueEmail("a11y.offline") });
    await form.submit();
    await form.cannotBeSent.waitFor();
    assert.deepEqual(await violations(page), [], "the form that cannot be sent");
  });

  test("double opt-in's note, its email and the pages its link opens break no rule", async () => {
    const siteId = `a11y-optin-${Date.now().toString(36)}`;
    // A pale brand colour, which must not become the colour of the email's links.
    await putSite(siteId, { ...demo, double_opt_in: true, brand_color: "#fbbf24" });
    await widgetPage(page, "/a11y-optin.html", siteId);
    await form.ready(demo.consent_text);
    const email = uniqueEmail("a11y.optin");
    await form.complete({ name: "Gil", email }, warm);
    await page.getByTestId("confirm-note").waitFor();
    assert.deepEqual(await violations(page), [], "the thank-you asking to confirm the address");

    let confirmation;
    await eventually(() => (confirmation = mailTo(email)[0]), 15_000, "the confirmation email");
    await page.setContent(confirmation.html);
    assert.deepEqual(await violations(page), [], "the confirmation email");

    const link = confirmation.text.match(/\S+\/v1\/confirm\/\S+/)?.[0];
    assert.ok(link, "the confirmation email has a link");
    await page.goto(link);
    assert.deepEqual(await violations(page), [], "the page with the button");
    await page.getByRole("button", { name: "Confirm" }).click();
    await page.getByRole("heading").filter({ hasText: /thank you/i }).waitFor();
    assert.deepEqual(await violations(page), [], "the page that says it is confirmed");
  });
});
