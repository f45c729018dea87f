// Getting a lead to the edge when the network does not cooperate: automatic retries, the
// Idempotency-Key header, and the offline outbox (localStorage) that survives the page.
import { beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { base, eventually, leadsFor, uniqueEmail, warm, withBrowser } from "./support.mjs";

const ctx = withBrowser();
let page, form, demo;
beforeEach(() => ({ page, form, demo } = ctx));

const outbox = (p) =>
  p.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith("leadglue:outbox:")));

/** The demo landing page with the form filled in up to its last step. */
async function readyToSend(email) {
  await page.goto(`${base}/`);
  await form.ready(demo.consent_text);
  await form.fill({ name: "Ada", email });
  await form.submit();
  await form.qualify(warm);
}

describe("delivery", () => {
  test("a 503 and a dropped connection are retried without a click: one lead, one key", async () => {
    const posts = [];
    page.on("request", (r) => {
      if (r.method() === "POST" && r.url().endsWith("/v1/leads")) {
        posts.push({ header: r.headers()["idempotency-key"], key: r.postDataJSON().idempotency_key });
      }
    });
    let seen = 0;
    await page.route("**/v1/leads", (route) => {
      seen += 1;
      if (seen === 1) return route.fulfill({ status: 503, contentType: "application/json", body: "{}" });
      if (seen === 2) return route.abort("connectionreset");
      return route.continue();
    });
    const email = uniqueEmail("blip");
    await readyToSend(email);
    await form.submit();
    assert.equal(await form.submitButton.textContent(), "Sending…");
    await form.until(form.thankYou);

    assert.equal(leadsFor(email).length, 1);
    assert.equal(posts.length, 3, "sent once, retried twice");
    for (const post of posts) {
      assert.match(post.key, /^[0-9a-f]{32}$/);
      assert.equal(post.header, post.key, "the Idempotency-Key header is the body's key");
      assert.equal(post.key, posts[0].key, "every retry carries the same key");
    }
    assert.deepEqual(await outbox(page), [], "nothing left to send");
  });

  test("a send whose answer never comes is cut off and sent again: one lead, one key", async () => {
    const keys = [];
    let stalled;
    await page.route("**/v1/leads", async (route) => {
      keys.push(route.request().headers()["idempotency-key"]);
      if (keys.length > 1) return route.continue();
      // The edge gets the first and stores its lead, but its answer never arrives (a stalled
      // connection): the request is left hanging.
      stalled = await route.fetch();
    });
    const email = uniqueEmail("stalled");
    await readyToSend(email);
    await form.submit();
    await form.until(form.thankYou);

    assert.equal(stalled?.status(), 201, "the first request reached the edge");
    assert.equal(keys.length, 2, "cut off once, sent again");
    assert.equal(keys[1], keys[0], "with the same key");
    assert.equal(leadsFor(email).length, 1);
  });

  test("offline, the visitor is told, and the lead goes once the network is back", async () => {
    const email = uniqueEmail("offline");
    await readyToSend(email);
    await page.context().setOffline(true);
    try {
      await form.submit();
      await form.sendError.filter({ hasText: "You're offline" }).waitFor();
      assert.match(await form.announcer.textContent(), /as soon as you're back online/);
      assert.equal((await outbox(page)).length, 1, "kept on the device");
      assert.equal(leadsFor(email).length, 0);
    } finally {
      await page.context().setOffline(false);
    }
    await form.until(form.thankYou);
    assert.equal(leadsFor(email).length, 1);
    assert.deepEqual(await outbox(page), []);
  });

  test("a lead sent offline from a page closed since is delivered from the next page", async () => {
    const email = uniqueEmail("closed");
    await readyToSend(email);
    const context = page.context();
    await context.setOffline(true);
    try {
      await form.submit();
      await form.sendError.filter({ hasText: "You're offline" }).waitFor();
      assert.equal((await outbox(page)).length, 1);
      await page.close();
    } finally {
      await context.setOffline(false);
    }
    assert.equal(leadsFor(email).length, 0, "nothing arrived while offline");

    const later = await context.newPage();
    ctx.page = later; // closed by the shared afterEach
    await later.goto(`${base}/`);
    await later.getByTestId("consent-text").filter({ hasText: demo.consent_text }).waitFor();
    await eventually(() => leadsFor(email).length === 1, 15_000, "the kept lead");
    await eventually(async () => (await outbox(later)).length === 0, 5_000, "an empty outbox");
    assert.equal(leadsFor(email).length, 1, "delivered once");
  });
});
