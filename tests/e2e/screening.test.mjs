// The widget's side of telling people from bots: the render token behind the minimum fill time,
// and the Turnstile challenge (Cloudflare's script stood in for by the test mail sink).
import { beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { base, d1, eventually, hostSite, putForm, putSite, uniqueEmail, widgetPage, withBrowser } from "./support.mjs";

const ctx = withBrowser();
let page, form, demo;
beforeEach(() => ({ page, form, demo } = ctx));

const spamReasons = (email) => d1(`SELECT spam_reason FROM leads WHERE email = '${email}'`).map((r) => r.spam_reason);

/**
 * A new site (the Worker caches a site's settings for a minute, so redefining one would not
 * show at once) with a one-step form, so that a visitor can send it in a moment.
 */
async function newSite(tag, settings) {
  const siteId = `${tag}-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  await putSite(siteId, { ...demo, ...settings });
  await putForm(siteId, "short", { title: "Talk to us", questions: [], thresholds: { hot: 80, warm: 40 } });
  return siteId;
}

describe("minimum fill time", () => {
  test("a form sent at once is kept as too fast; one sent after the minimum is not", async () => {
    const siteId = await newSite("fill", { min_fill_seconds: 2 });

    await widgetPage(page, "/fill-fast.html", siteId, "short");
    await form.ready(demo.consent_text);
    const fast = uniqueEmail("fast");
    const shownAt = Date.now();
    await form.fill({ name: "Quick Bot", email: fast });
    await form.submit();
    await form.until(form.thankYou);
    assert.ok(Date.now() - shownAt < 2_000, "sent within the minimum");
    assert.deepEqual(spamReasons(fast), ["too_fast"]);

    await widgetPage(page, "/fill-slow.html", siteId, "short");
    await form.ready(demo.consent_text);
    await page.waitForTimeout(2_500);
    const slow = uniqueEmail("slow");
    await form.fill({ name: "Ada Lovelace", email: slow });
    await form.submit();
    await form.until(form.thankYou);
    assert.deepEqual(spamReasons(slow), [null]);
  });

  /**
   * Opens `siteId`'s short form while the edge cannot be reached for the form's HTML or its
   * render token: the widget shows the form itself, with no token. Resolves once the token's
   * request has failed, with the routing undone.
   */
  async function shownWithoutToken(p, path, siteId) {
    const unreachable = (url) => url.pathname.endsWith("/html") || url.pathname.endsWith("/render-token");
    await p.route(unreachable, (route) => route.abort("connectionrefused"));
    const failed = p.waitForEvent("requestfailed", (r) => r.url().endsWith("/render-token"));
    await widgetPage(p, path, siteId, "short");
    await form.ready(demo.consent_text);
    await failed;
    await p.unroute(unreachable);
  }

  test("a form shown while the edge was unreachable is not kept as too fast when sent", async () => {
    const siteId = await newSite("late", { min_fill_seconds: 2 });
    await shownWithoutToken(page, "/late-token.html", siteId);
    const email = uniqueEmail("late");
    await form.fill({ name: "Ada Lovelace", email });
    const sentAt = Date.now();
    await form.submit();
    await form.until(form.thankYou);
    assert.ok(Date.now() - sentAt >= 2_000, "sent once the minimum had passed since its late token");
    assert.deepEqual(spamReasons(email), [null]);
  });

  test("such a form kept offline is delivered from the next page, not as spam", async () => {
    const siteId = await newSite("late-kept", { min_fill_seconds: 2 });
    await shownWithoutToken(page, "/late-kept.html", siteId);
    const email = uniqueEmail("latekept");
    await form.fill({ name: "Ada Lovelace", email });
    const context = page.context();
    await context.setOffline(true);
    try {
      await form.submit();
      await form.sendError.filter({ hasText: "You're offline" }).waitFor();
      await page.close();
    } finally {
      await context.setOffline(false);
    }
    const later = await context.newPage();
    ctx.page = later; // closed by the shared afterEach
    await widgetPage(later, "/late-kept-2.html", siteId, "short");
    await eventually(() => spamReasons(email).length === 1, 15_000, "the kept lead");
    assert.deepEqual(spamReasons(email), [null], "a person's, with a late render token");
  });
});

describe("Turnstile", () => {
  /**
   * A Turnstile site's one-step form on a page with a real address (Chromium does not let a
   * page faked by Playwright's routing load a script from the Turnstile stand-in's loopback
   * address), opened and ready. Returns the page's server, to close when done.
   */
  async function turnstilePage(tag) {
    const pages = {};
    const partner = await hostSite(pages);
    const siteId = await newSite(tag, {
      allowed_origins: [partner.origin],
      turnstile_site_key: "1x00000000000000000000AA",
    });
    pages["/"] = `<!doctype html><html><head><meta charset="utf-8"></head><body>
      <script type="module" src="${base}/widget/v1/leadglue.js" data-site="${siteId}" data-form="short"></script>
      </body></html>`;
    await page.goto(`${partner.origin}/`);
    await form.ready(demo.consent_text);
    return partner;
  }

  test("the challenge shows inside the form and must be solved before the lead is taken", async () => {
    const partner = await turnstilePage("turnstile");
    try {
      const email = uniqueEmail("turnstile");
      // The challenge comes with the widget, which a first touch of the form loads.
      await form.fill({ name: "Ada", email });
      const challenge = page.getByTestId("turnstile-stand-in");
      await challenge.waitFor();
      assert.equal(
        await challenge.evaluate((el) => el.getRootNode() instanceof ShadowRoot && !!el.closest("form")),
        true,
        "rendered inside the widget's form",
      );
      assert.equal(
        await page.evaluate(() => document.head.querySelectorAll("script[src*='/turnstile/api.js']").length),
        1,
        "Turnstile's script is added to the page once",
      );

      await form.submit();
      await page.locator("#lg-turnstile-error").filter({ hasText: /./ }).waitFor();
      assert.equal(d1(`SELECT id FROM leads WHERE email = '${email}'`).length, 0);

      await challenge.click();
      await form.submit();
      await form.until(form.thankYou);
      assert.deepEqual(spamReasons(email), [null]);
    } finally {
      await partner.close();
    }
  });

  test("a request kept offline until its challenge expired is sent after a fresh one", async () => {
    const partner = await turnstilePage("turnstile-kept");
    const context = page.context();
    try {
      const email = uniqueEmail("kept");
      await form.fill({ name: "Ada", email });
      await page.getByTestId("turnstile-stand-in").click();
      await context.setOffline(true);
      try {
        await form.submit();
        await form.sendError.filter({ hasText: "You're offline" }).waitFor();
        // Turnstile's tokens live five minutes: this one expires while the request waits.
        await page.evaluate(() => {
          for (const name of Object.keys(localStorage).filter((k) => k.startsWith("leadglue:outbox:"))) {
            const entry = JSON.parse(localStorage.getItem(name));
            entry.body = JSON.stringify({ ...JSON.parse(entry.body), turnstile_token: "expired" });
            localStorage.setItem(name, JSON.stringify(entry));
          }
        });
        await page.close();
      } finally {
        await context.setOffline(false);
      }

      // A later page of the site: the kept request is refused for its token, so the form asks
      // for the challenge, and sends the request with the fresh token.
      const later = await context.newPage();
      ctx.page = later; // closed by the shared afterEach
      await later.goto(`${partner.origin}/`);
      await later.getByTestId("outbox-waiting").waitFor();
      assert.deepEqual(spamReasons(email), [], "not taken with the expired token");
      await later.getByTestId("turnstile-stand-in").click();
      await later.getByTestId("outbox-sent").waitFor();
      assert.deepEqual(spamReasons(email), [null], "taken once, as a person's");
      const kept = await later.evaluate(() =>
        Object.keys(localStorage).filter((k) => k.startsWith("leadglue:outbox:")),
      );
      assert.deepEqual(kept, [], "nothing left to send");
      assert.equal(await later.getByTestId("outbox-waiting").isVisible(), false);
    } finally {
      await partner.close();
    }
  });
});
