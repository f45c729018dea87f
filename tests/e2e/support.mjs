// Shared set-up for the browser tests: the Worker under test, a real Chromium, the demo site,
// and a page object for the form.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { createServer } from "node:http";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { after, afterEach, before, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { launchOptions } from "./chromium.mjs";

const need = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the browser tests with \`cargo xtask test\``);
  return value;
};

export const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
export const base = need("LEADGLUE_BASE_URL");
export const port = new URL(base).port;
const adminToken = need("LEADGLUE_ADMIN_TOKEN");
const state = need("LEADGLUE_D1_STATE");

/** Defines (or redefines) a site through the admin API. */
export async function putSite(id, definition) {
  const res = await fetch(`${base}/v1/admin/sites/${id}`, {
    method: "PUT",
    headers: { "content-type": "application/json", authorization: `Bearer ${adminToken}` },
    body: JSON.stringify(definition),
  });
  if (res.status !== 200) throw new Error(`defining site ${id}: ${res.status} ${await res.text()}`);
}

/** Defines a new version of a site's form through the admin API. */
export async function putForm(siteId, formId, definition) {
  const res = await fetch(`${base}/v1/admin/sites/${siteId}/forms/${formId}`, {
    method: "PUT",
    headers: { "content-type": "application/json", authorization: `Bearer ${adminToken}` },
    body: JSON.stringify(definition),
  });
  if (res.status !== 200) throw new Error(`defining form ${formId}: ${res.status} ${await res.text()}`);
  return res.json();
}

/** The demo site, as `cargo xtask dev` seeds it, allowed on the test Worker's origins. */
export async function seedDemoSite() {
  const site = JSON.parse(readFileSync(join(root, "edge/demo/site.json"), "utf8"));
  site.allowed_origins.push(`http://127.0.0.1:${port}`, `http://localhost:${port}`);
  // The browser tests fill the form faster than people do, and reuse addresses: the minimum fill
  // time and duplicate suppression have tests of their own.
  site.min_fill_seconds = 0;
  site.duplicate_window_hours = 0;
  await putSite("demo", site);
  return site;
}

/**
 * Rows from the Worker's local D1, read through wrangler like an operator would. wrangler opens
 * the database beside the running Worker, whose queue consumer may be writing at that moment:
 * SQLite then says SQLITE_BUSY, and the read is simply tried again.
 */
export function d1(sql) {
  for (let attempt = 1; ; attempt++) {
    try {
      const out = execFileSync(
        join(root, "node_modules/.bin/wrangler"),
        ["d1", "execute", "DB", "--local", "--persist-to", state, "--json", "--command", sql],
        {
          cwd: join(root, "edge"),
          env: { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false" },
          encoding: "utf8",
          stdio: ["ignore", "pipe", "pipe"],
        },
      );
      return JSON.parse(out)[0].results;
    } catch (err) {
      if (attempt >= 5 || !String(err.stderr ?? err).includes("SQLITE_BUSY")) throw err;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200 * attempt);
    }
  }
}

/** The leads stored under `email` (one from `uniqueEmail`, so safe to put in the SQL). */
export const leadsFor = (email) =>
  d1(`SELECT id, site_id, email, name, company, message, consent_text_version, page_url, spam_reason FROM leads WHERE email = '${email}'`);

/** Calls `check` until it returns something truthy (which it returns), for up to `ms`. */
export async function eventually(check, ms = 15_000, what = "the condition") {
  const until = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > until) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** The snippet marketers paste (`widget/loader/snippet.html`), with its placeholders. */
const snippetSource = readFileSync(join(root, "widget/loader/snippet.html"), "utf8").trimEnd();

/** Every snippet ever published (`widget/loader/published/`), by file name. */
export const publishedSnippets = readdirSync(join(root, "widget/loader/published"))
  .filter((name) => name.endsWith(".html"))
  .map((name) => ({ name, source: readFileSync(join(root, "widget/loader/published", name), "utf8").trimEnd() }));

/**
 * The snippet for `siteId` on the edge at `edge` ("": the page's own origin), with `data-form`
 * and `data-target` when given: as a marketer would paste it (the current one, or `source`).
 */
export function snippet(siteId, { edge = "", form, target, source = snippetSource } = {}) {
  const extra = (form ? ` data-form="${form}"` : "") + (target ? ` data-target="${target}"` : "");
  return source
    .replace("SITE_ID", siteId)
    .replace("https://EDGE", edge)
    .replace("<script", `<script${extra}`);
}

/** The CSP source that allows the snippet's code (the same for every site and page). */
export const snippetHash = (() => {
  const code = snippetSource.slice(snippetSource.indexOf(">") + 1, snippetSource.lastIndexOf("</script>"));
  return `'sha256-${createHash("sha256").update(code).digest("base64")}'`;
})();

/**
 * A page at `${base}${path}` (the Worker's own origin) with only the widget of `siteId` on it,
 * embedded with the current snippet (or `source`).
 */
export async function widgetPage(page, path, siteId, formId, source) {
  const body = `<!doctype html><html><head><meta charset="utf-8"></head><body>
    ${snippet(siteId, { form: formId, source })}</body></html>`;
  await page.route(`${base}${path}`, (r) => r.fulfill({ contentType: "text/html", body }));
  await page.goto(`${base}${path}`);
}

/** Answers to the demo form's questions, as a visitor interested but in no hurry gives them. */
export const warm = { timeline: "3_months", role: "influencer", size: "11_50", followUp: "send_information" };

/** Whether the form on `page` is still the static markup the snippet showed (no takeover yet). */
export const shownAsHtml = (page) =>
  page.getByTestId("leadglue").evaluate((el) => el.hasAttribute("data-render-token"));

/** A unique, SQL-safe address for one test's visitor. */
export const uniqueEmail = (tag) =>
  `${tag}-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}@example.com`;

/** A fresh headless Chromium (Debian's), kept off the network. */
export async function launch() {
  const dir = mkdtempSync(join(tmpdir(), "leadglue-e2e-"));
  const context = await chromium.launchPersistentContext(dir, launchOptions(need("CHROMIUM")));
  const errors = [];
  context.on("weberror", (e) => errors.push(String(e.error())));
  return {
    context,
    errors,
    async close() {
      await context.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The form as a visitor sees it. Playwright's locators reach into the open shadow root. */
export class LeadForm {
  constructor(page) {
    this.page = page;
    this.name = page.getByTestId("name");
    this.email = page.getByTestId("email");
    this.company = page.getByTestId("company");
    this.message = page.getByTestId("message");
    this.consent = page.getByTestId("consent");
    this.consentText = page.getByTestId("consent-text");
    this.submitButton = page.getByTestId("submit");
    this.backButton = page.getByTestId("back");
    this.progress = page.getByTestId("progress");
    this.retryButton = page.getByTestId("retry");
    this.sendError = page.getByTestId("send-error");
    this.thankYou = page.getByTestId("thank-you");
    this.announcer = page.getByTestId("announcer");
    /** Where the form says it cannot be sent (the widget's code could not be had). */
    this.cannotBeSent = page.getByTestId("general-error").filter({ hasText: /cannot be sent right now/ });
    // What the page still waits for, and what failed: told when the flow stalls (`until`).
    this.pending = new Set();
    this.failed = [];
    page.on("request", (r) => this.pending.add(r));
    page.on("requestfinished", (r) => this.pending.delete(r));
    page.on("requestfailed", (r) => {
      this.pending.delete(r);
      this.failed.push(`${r.url()} (${r.failure()?.errorText})`);
    });
  }

  /** Waits for `locator`; on a timeout, says where the page and the widget stand. */
  async until(locator) {
    try {
      await locator.waitFor();
    } catch (e) {
      const widget = await this.inWidget((root) => ({
        plainHtml: root.querySelector("[data-render-token]") !== null,
        heldSubmit: root.firstElementChild?.dataset.held ?? null,
        alerts: [...root.querySelectorAll("[role=alert]")].map((a) => a.textContent),
      })).catch((err) => String(err));
      e.message += `\n  still loading: ${[...this.pending].map((r) => r.url()).join(", ") || "nothing"}`;
      e.message += `\n  failed: ${this.failed.join(", ") || "nothing"}`;
      e.message += `\n  widget: ${JSON.stringify(widget)}`;
      throw e;
    }
  }

  /** Waits until the form is ready: wasm loaded and the site's consent text shown. */
  async ready(consentText, { timeout } = {}) {
    await this.consentText.filter({ hasText: consentText }).waitFor({ timeout });
  }

  async fill({ name, email, company, message, consent = true }) {
    if (name !== undefined) await this.name.fill(name);
    if (email !== undefined) await this.email.fill(email);
    if (company !== undefined) await this.company.fill(company);
    if (message !== undefined) await this.message.fill(message);
    if (consent) await this.consent.check();
  }

  /** Step 1 → step 2 ("Next"), or sends on the last step ("Send"). */
  async submit() {
    await this.submitButton.click();
  }

  /** Picks `value` for a choice question (several values for a multiple choice). */
  async answer(question, ...values) {
    for (const value of values) await this.page.getByTestId(`q-${question}-${value}`).check();
  }

  /** Answers the built-in default form's questions. */
  async qualify({ timeline, role, size, interest = [], followUp }) {
    await this.answer("timeline", timeline);
    await this.answer("role", role);
    await this.answer("company_size", size);
    if (interest.length) await this.answer("interest", ...interest);
    await this.answer("follow_up", followUp);
  }

  /** The whole flow: contact details, Next, answers, Send; waits for the thank-you. */
  async complete(contact, profile) {
    await this.fill(contact);
    await this.submit();
    await this.until(this.page.getByTestId("q-timeline"));
    await this.qualify(profile);
    await this.submit();
    await this.until(this.thankYou);
  }

  /**
   * Evaluates `fn(shadowRoot, arg)` on the widget's shadow root in one go. (A locator's element
   * may be the plain-HTML form's, replaced by the widget's between finding it and evaluating.)
   */
  async inWidget(fn, arg) {
    // The shadow root stays for the page's life; only what is in it is replaced.
    const root = await this.page.evaluateHandle(
      () => [...document.querySelectorAll("*")].find((el) => el.shadowRoot).shadowRoot,
    );
    try {
      return await root.evaluate(fn, arg);
    } finally {
      await root.dispose();
    }
  }

  /** Presses Tab until the element with this test id has focus inside the widget. */
  async tabTo(testid, limit = 40) {
    for (let i = 0; i < limit; i++) {
      const focused = await this.inWidget((root) => root.activeElement?.dataset.testid ?? null);
      if (focused === testid) return;
      await this.page.keyboard.press("Tab");
    }
    throw new Error(`Tab never reached ${testid}`);
  }

  /** The error message tied to a field through aria-describedby, or null. */
  async describedError(field) {
    return this.inWidget((root, field) => {
      const id = root.querySelector(`[data-testid="${field}"]`).getAttribute("aria-describedby");
      return id ? root.getElementById(id)?.textContent ?? "" : null;
    }, field);
  }

  /** The id of the focused element inside the widget's shadow root. */
  async focusedId() {
    return this.inWidget((root) => root.activeElement?.id ?? null);
  }
}

/**
 * A marketer's site on another origin than the Worker's: a real HTTP server on a free loopback
 * port, serving the pages it is given. (Pages faked with Playwright's routing have no address,
 * and Chromium's local-network rules then block them from reaching the Worker.)
 */
export async function hostSite(pages) {
  const server = createServer((req, res) => {
    // A page is its HTML, or `{ body, headers }` for one with headers of its own.
    const page = pages[req.url];
    const { body, headers } = typeof page === "string" ? { body: page } : (page ?? {});
    res.writeHead(body === undefined ? 404 : 200, { "content-type": "text/html; charset=utf-8", ...headers });
    res.end(body ?? "not found");
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    origin: `http://127.0.0.1:${server.address().port}`,
    close: () => {
      // Chromium holds speculative, request-less sockets open; without this, close() waits for
      // the server's header timeout (about a minute and a half).
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

/**
 * The hooks every browser suite shares: the demo site seeded, one browser per file, a fresh
 * page (and its page object) per test, and no uncaught page errors allowed. Returns an object
 * whose `demo`, `page` and `form` are current during each test.
 */
export function withBrowser() {
  const current = {};
  let browser;
  before(async () => {
    current.demo = await seedDemoSite();
    browser = await launch();
  });
  after(async () => browser?.close());
  beforeEach(async () => {
    current.page = await browser.context.newPage();
    current.form = new LeadForm(current.page);
  });
  afterEach(async () => {
    await current.page.close();
    assert.deepEqual(browser.errors.splice(0), [], "no uncaught errors on the page");
  });
  return current;
}
