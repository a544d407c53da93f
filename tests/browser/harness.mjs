// The browser test harness: starts the real dienhong binary on a fresh SQLite database,
// drives Debian's Chromium through playwright-core (never a downloaded browser), and checks
// pages the way a person meets them: screenshots in both languages at phone and desk widths,
// nothing cut off sideways, no serious accessibility violation (axe-core).
//
// A test script is an ES module that calls `runTest(async () => ({ ...result }))`: on
// success it prints one JSON line `{"ok":true,...result}` as its last stdout line and exits 0;
// on failure it writes the reason (and the tail of every server log, and the pages' console
// errors) to stderr, prints `{"ok":false,"error":"..."}` as its last stdout line and exits 1.
// Servers and browsers started through this module are stopped either way.

import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import https from "node:https";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const HERE = path.dirname(fileURLToPath(import.meta.url));

/** Debian's Chromium; DIENHONG_CHROMIUM may point elsewhere. Never a downloaded browser. */
export const CHROMIUM = process.env.DIENHONG_CHROMIUM || "/usr/bin/chromium";

/** DESIGN.md §7: headless WebRTC on this closed network, plus fake camera and microphone. */
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--use-fake-device-for-media-stream",
  "--use-fake-ui-for-media-stream",
  "--allow-loopback-in-peer-connection",
  "--autoplay-policy=no-user-gesture-required",
];

/** The two widths every page is looked at: a phone and a desk screen. */
export const VIEWPORTS = [
  { width: 390, height: 844 },
  { width: 1440, height: 900 },
];

export const DEFAULT_VIEWPORT = { width: 1440, height: 900 };

// What is running, so that a failure can show the logs and nothing outlives the test.
const servers = new Set();
const browsers = new Set();
const pageErrors = [];
// What the pages' Content-Security-Policy refused: any at all fails the test.
const cspViolations = [];

// ---------------------------------------------------------------------------------------
// Assertions and waiting

export class AssertionError extends Error {}

/** Throws `message` (a string, or a function giving one) unless `condition` holds. */
export function assert(condition, message = "assertion failed") {
  if (!condition) throw new AssertionError(typeof message === "function" ? message() : message);
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Calls `probe` until it returns a truthy value (returned) or `timeoutMs` passes (throws
 * "timed out after Nms waiting for <what>", with the last value or error seen).
 */
export async function poll(probe, { timeoutMs = 10_000, intervalMs = 250, what = "a condition" } = {}) {
  const end = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await probe();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() >= end) {
      const seen = last instanceof Error ? `error: ${last.message}` : `last value: ${JSON.stringify(last)}`;
      throw new AssertionError(`timed out after ${timeoutMs} ms waiting for ${what} (${seen})`);
    }
    await sleep(intervalMs);
  }
}

// ---------------------------------------------------------------------------------------
// The server

/** A TCP port nobody listens on right now, from the kernel. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function tail(file, bytes = 4000) {
  try {
    const text = fs.readFileSync(file, "utf8");
    return text.length > bytes ? "…" + text.slice(-bytes) : text;
  } catch (e) {
    return `(no log: ${e.message})`;
  }
}

/**
 * Starts `bin demo` on 127.0.0.1:`port` (a free one if not given) with the demo sitting on a
 * fresh SQLite database in a temporary directory, the SFU on one kernel-chosen UDP port, and
 * `env` over the inherited environment. Resolves once /healthz answers 200.
 * Returns { base, port, dir, logPath, process, logTail(bytes), stop() }.
 */
/** GET `url` over HTTPS trusting only `ca` (PEM); resolves to the status code. */
export function httpsStatus(url, ca, { timeoutMs = 1000 } = {}) {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ca, timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
  });
}

/**
 * Starts the server's demo on 127.0.0.1. With `tls: { ca }` (the PEM of the authority that
 * signed its certificate; the caller passes `--tls --cert-dir` in `args`) the health check
 * goes over HTTPS and `base` is https.
 */
export async function startServer({ bin, port, env = {}, args = [], timeoutMs = 60_000, tls = null } = {}) {
  assert(bin, "startServer: no server binary given (--bin)");
  assert(fs.existsSync(bin), `startServer: ${bin} does not exist (cargo build --bin dienhong)`);
  port = port || (await freePort());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dienhong-browser-"));
  const logPath = path.join(dir, "server.log");
  const log = fs.openSync(logPath, "w");
  const child = spawn(
    bin,
    ["demo", "--listen", `127.0.0.1:${port}`, "--database", `sqlite:${path.join(dir, "db")}`, ...args],
    {
      env: {
        ...process.env,
        DIENHONG__MEDIA__UDP_PORT_MIN: "0",
        DIENHONG__MEDIA__UDP_PORT_MAX: "0",
        // The server under test is usually a debug build, whose media thread is many times
        // slower per packet than a release build's: its measured load says nothing of a real
        // deployment, so the load governor refuses and sheds only at full load here
        // (overload.mjs sets its own ceiling to test refusals).
        DIENHONG__MEDIA__ADMIT_CEILING: "1",
        DIENHONG__MEDIA__SHED_ABOVE: "1",
        DIENHONG__MEDIA__RESTORE_BELOW: "0.9",
        RUST_LOG: process.env.RUST_LOG || "warn,rtc_dtls=error",
        NO_COLOR: "1",
        ...env,
      },
      stdio: ["ignore", log, log],
    },
  );
  fs.closeSync(log);
  let exited = null;
  const exit = new Promise((resolve) => {
    child.on("exit", (code, signal) => {
      exited = { code, signal };
      resolve(exited);
    });
    child.on("error", (e) => {
      exited = { error: e.message };
      resolve(exited);
    });
  });
  const base = `${tls ? "https" : "http"}://127.0.0.1:${port}`;
  const server = {
    base,
    port,
    dir,
    logPath,
    process: child,
    logTail: (bytes) => tail(logPath, bytes),
    /** Stops the server (SIGTERM, SIGKILL after 20 s) and removes its temp dir unless `keep`. */
    async stop({ keep = Boolean(process.env.DIENHONG_KEEP_TMP) } = {}) {
      if (!servers.has(server)) return;
      servers.delete(server);
      if (!exited) {
        child.kill("SIGTERM");
        const t = setTimeout(() => child.kill("SIGKILL"), 20_000);
        await exit;
        clearTimeout(t);
      }
      if (!keep) fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  servers.add(server);

  const end = Date.now() + timeoutMs;
  for (;;) {
    if (exited) {
      const why = exited.error || `code ${exited.code}, signal ${exited.signal}`;
      const message = `the server exited before it was healthy (${why}); its log:\n${tail(logPath)}`;
      await server.stop();
      throw new Error(message);
    }
    try {
      const status = tls
        ? await httpsStatus(`${base}/healthz`, tls.ca)
        : (await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(1000) })).status;
      if (status === 200) return server;
    } catch (_) {
      /* not listening yet */
    }
    if (Date.now() >= end) {
      const message = `the server did not answer ${base}/healthz within ${timeoutMs} ms; its log:\n${tail(logPath)}`;
      await server.stop();
      throw new Error(message);
    }
    await sleep(200);
  }
}

/** POST /api/login as `code`; returns the token (throws on any other answer than 200). */
/**
 * The demo server over HTTPS from its own development certificate for the host `name`
 * (`dienhong dev-cert`, `demo --tls`): returns { server, base, spki, browserArgs, ca }, where
 * `browserArgs` make a browser resolve `name` to loopback and trust that key, for that
 * browser only. The certificate's folder goes when the server stops.
 */
export async function startTlsServer({ bin, name, env = {} }) {
  const certDir = fs.mkdtempSync(path.join(os.tmpdir(), "dienhong-cert-"));
  const made = spawnSync(bin, ["dev-cert", "--out", certDir, "--name", name], { encoding: "utf8" });
  assert(made.status === 0, () => `dev-cert failed: ${made.stderr}`);
  const spki = /SPKI \(SHA-256, base64\): (\S+)/.exec(made.stdout);
  assert(spki, () => `dev-cert printed no SPKI hash: ${made.stdout}`);
  const ca = fs.readFileSync(path.join(certDir, "dev-ca.pem"));
  const server = await startServer({ bin, env, args: ["--tls", "--cert-dir", certDir], tls: { ca } });
  const stop = server.stop.bind(server);
  server.stop = async (opts) => {
    await stop(opts);
    fs.rmSync(certDir, { recursive: true, force: true });
  };
  const resolve = `--host-resolver-rules=MAP ${name} 127.0.0.1`;
  return {
    server,
    base: `https://${name}:${server.port}`,
    spki: spki[1],
    ca,
    resolve,
    browserArgs: [resolve, `--ignore-certificate-errors-spki-list=${spki[1]}`],
  };
}

export async function apiLogin(base, code, password = "demo") {
  const r = await fetch(`${base}/api/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ code, password }),
  });
  const text = await r.text();
  assert(r.status === 200, `POST /api/login as ${code} answered ${r.status}: ${text}`);
  const body = JSON.parse(text);
  assert(typeof body.token === "string", `POST /api/login as ${code} gave no token: ${JSON.stringify(body)}`);
  return body.token;
}

// ---------------------------------------------------------------------------------------
// The browser

/** Debian's Chromium, headless, fake camera and microphone. Closed by runTest at the end. */
export async function launchBrowser({ args = [], ...options } = {}) {
  assert(fs.existsSync(CHROMIUM), `${CHROMIUM} is not installed (scripts/test-deps.sh installs it)`);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [...CHROMIUM_ARGS, ...args],
    ...options,
  });
  browsers.add(browser);
  browser.on("disconnected", () => browsers.delete(browser));
  return browser;
}

/**
 * A fresh browser context for one role (its own cookies and storage, as a separate device)
 * with the camera and microphone allowed for `base`. Console errors and uncaught exceptions
 * of its pages are kept and shown if the test fails.
 */
export async function newRole(browser, base, { viewport = DEFAULT_VIEWPORT, name, ...options } = {}) {
  const context = await browser.newContext({ viewport, ...options });
  await context.grantPermissions(["camera", "microphone"], { origin: base });
  const who = name || `context ${browser.contexts().length}`;
  context.on("page", (page) => {
    page.on("pageerror", (e) => pageErrors.push(`${who} ${page.url()}: uncaught ${e.message}`));
    page.on("console", (m) => {
      if (m.type() !== "error") return;
      const at = m.location() && m.location().url ? ` (${m.location().url})` : "";
      pageErrors.push(`${who} ${page.url()}: console.error ${m.text()}${at}`);
      if (m.text().includes("Content Security Policy")) cspViolations.push(`${who} ${page.url()}: ${m.text()}`);
    });
  });
  return context;
}

/**
 * Logs in through the page's form, as a person does: types the code and the password into
 * `#login` and clicks its submit button. Waits for the form to be visible first; does not
 * wait for the outcome (the caller checks what it expects).
 */
export async function loginViaForm(page, code, password = "demo", { timeoutMs = 10_000 } = {}) {
  await page.locator("#login").waitFor({ state: "visible", timeout: timeoutMs });
  await page.fill("#login [name=code]", code);
  await page.fill("#login [name=password]", password);
  await page.click("#login button[type=submit], #login input[type=submit], #login button:not([type])");
}

// ---------------------------------------------------------------------------------------
// Looking at pages

/** Where screenshots go: DIENHONG_SCREENSHOTS, else $CARGO_TARGET_DIR/screenshots, else /tmp. */
export function screenshotDir() {
  if (process.env.DIENHONG_SCREENSHOTS) return process.env.DIENHONG_SCREENSHOTS;
  if (process.env.CARGO_TARGET_DIR) return path.join(process.env.CARGO_TARGET_DIR, "screenshots");
  return "/tmp/dienhong-screenshots";
}

// Two animation frames: styles and layout have caught up with a resize or a click.
// (A timer too, in case the page gets no frames.)
const settle = (page) =>
  page.evaluate(
    () =>
      new Promise((r) => {
        requestAnimationFrame(() => requestAnimationFrame(() => r()));
        setTimeout(r, 500);
      }),
  );

const pageLang = (page) => page.evaluate(() => document.documentElement.lang || "unknown");

async function toggleLang(page) {
  const before = await pageLang(page);
  await page.click("#lang");
  await poll(async () => (await pageLang(page)) !== before, {
    timeoutMs: 3000,
    intervalMs: 50,
    what: `the #lang button to switch the page's language away from "${before}"`,
  });
  await settle(page);
}

/**
 * Full-page screenshots of `page` in both languages (switched with the page's own `#lang`
 * button, then switched back) at both widths (390×844 and 1440×900), saved as
 * `${name}-${lang}-${width}.png` in screenshotDir(); checkLayout on each of the four.
 * Throws all layout problems together once the page is back as it was, unless `reportOnly`
 * (then they are written to stderr). Returns { files, problems }.
 */
export async function shoot(page, name, { dir = screenshotDir(), reportOnly = false } = {}) {
  fs.mkdirSync(dir, { recursive: true });
  const original = page.viewportSize();
  const files = [];
  const problems = [];
  for (let round = 0; round < 2; round++) {
    if (round === 1) await toggleLang(page);
    const lang = await pageLang(page);
    for (const viewport of VIEWPORTS) {
      await page.setViewportSize(viewport);
      await settle(page);
      const file = path.join(dir, `${name}-${lang}-${viewport.width}.png`);
      await page.screenshot({ path: file, fullPage: true });
      files.push(file);
      try {
        await checkLayout(page, `${name}-${lang}-${viewport.width}`);
      } catch (e) {
        problems.push(e.message);
      }
    }
  }
  await toggleLang(page);
  if (original) await page.setViewportSize(original);
  await settle(page);
  if (problems.length) {
    const message = problems.join("\n");
    if (!reportOnly) throw new AssertionError(message);
    process.stderr.write(`[report only] ${message}\n`);
  }
  return { files, problems };
}

/**
 * Throws if the document is wider than the viewport, or a visible control (button, input,
 * select, textarea, a[href], [role=button]) sticks out of the viewport sideways or is
 * clipped by an ancestor with overflow hidden/clip. Hidden controls are ignored, and so is
 * the page being taller than the viewport.
 */
export async function checkLayout(page, label = page.url()) {
  const problems = await page.evaluate(() => {
    const out = [];
    const de = document.documentElement;
    const vw = de.clientWidth;
    const describe = (el) => {
      let s = el.tagName.toLowerCase();
      if (el.id) s += `#${el.id}`;
      for (const c of [...el.classList].slice(0, 2)) s += `.${c}`;
      const n = el.getAttribute("name");
      if (n) s += `[name=${n}]`;
      const text = (el.innerText || el.value || el.getAttribute("aria-label") || "").trim().replace(/\s+/g, " ");
      if (text) s += ` "${text.slice(0, 30)}"`;
      return s;
    };
    const r = (x) => Math.round(x);

    if (de.scrollWidth > vw + 1) {
      // The outermost elements that reach past the right edge: where to look.
      const wide = [];
      for (const el of document.body.querySelectorAll("*")) {
        const b = el.getBoundingClientRect();
        if (b.width > 0 && b.right > vw + 1 && !(el.parentElement && wide.includes(el.parentElement))) {
          wide.push(el);
        }
      }
      const where = wide.slice(0, 5).map((el) => `${describe(el)} (right edge ${r(el.getBoundingClientRect().right)})`);
      out.push(`the document is ${de.scrollWidth}px wide in a ${vw}px viewport` + (where.length ? `; too wide: ${where.join(", ")}` : ""));
    }

    const hidden = (el) => {
      if (el.closest("[hidden]")) return true;
      if (el.matches("input[type=hidden]")) return true;
      if (el.checkVisibility && !el.checkVisibility({ visibilityProperty: true, contentVisibilityAuto: true })) return true;
      const st = getComputedStyle(el);
      if (st.display === "none" || st.visibility === "hidden" || st.visibility === "collapse") return true;
      const b = el.getBoundingClientRect();
      // Zero size, or a 1px "visually hidden" control.
      return b.width <= 1 || b.height <= 1;
    };
    const clips = (v) => v === "hidden" || v === "clip";
    const makesContainingBlock = (st) =>
      st.transform !== "none" || st.filter !== "none" || st.perspective !== "none" || /paint|layout|strict|content/.test(st.contain);

    const controls = document.querySelectorAll("button, input, select, textarea, a[href], [role=button]");
    for (const el of controls) {
      if (hidden(el)) continue;
      const b = el.getBoundingClientRect();
      if (b.left < -1) out.push(`${describe(el)} sticks out past the left edge (left ${r(b.left)}px)`);
      if (b.right > vw + 1) out.push(`${describe(el)} sticks out past the right edge (right ${r(b.right)}px, viewport ${vw}px)`);
      // Ancestors that clip it. Only those in its chain of containing blocks clip: an
      // absolutely positioned element escapes static ancestors, a fixed one all but those
      // with a transform, filter or containment. The root and body clip to the viewport,
      // checked above.
      let mode = getComputedStyle(el).position;
      for (let a = el.parentElement; a && a !== document.body && a !== de; a = a.parentElement) {
        const st = getComputedStyle(a);
        if (mode === "fixed" && !makesContainingBlock(st)) continue;
        if (mode === "absolute" && st.position === "static" && !makesContainingBlock(st)) continue;
        mode = st.position;
        const clipX = clips(st.overflowX);
        const clipY = clips(st.overflowY);
        if (!clipX && !clipY) continue;
        const ab = a.getBoundingClientRect();
        const left = ab.left + a.clientLeft;
        const top = ab.top + a.clientTop;
        const right = left + a.clientWidth;
        const bottom = top + a.clientHeight;
        const cutX = clipX && (b.left < left - 1 || b.right > right + 1);
        const cutY = clipY && (b.top < top - 1 || b.bottom > bottom + 1);
        if (cutX || cutY) {
          out.push(
            `${describe(el)} is cut off by ${describe(a)} (overflow ${st.overflowX}/${st.overflowY}; ` +
              `control ${r(b.left)},${r(b.top)}–${r(b.right)},${r(b.bottom)}, box ${r(left)},${r(top)}–${r(right)},${r(bottom)})`,
          );
          break;
        }
      }
    }
    return out;
  });
  if (problems.length) {
    throw new AssertionError(`layout ${label}: ${problems.length} problem(s)\n  - ${problems.join("\n  - ")}`);
  }
}

let axeSource = null;

/**
 * Runs axe-core (from node_modules, injected into the page: nothing is fetched) on the
 * whole document and throws listing every violation of impact serious or critical, unless
 * `reportOnly` (then they are written to stderr). Returns all violations axe found.
 */
export async function checkAxe(page, label = page.url(), { reportOnly = false, options = {} } = {}) {
  axeSource ??= fs.readFileSync(path.join(HERE, "node_modules", "axe-core", "axe.min.js"), "utf8");
  // Evaluated through the DevTools protocol, not added as an inline script: the pages'
  // Content-Security-Policy refuses inline scripts (and the harness fails on any refusal).
  if (!(await page.evaluate(() => typeof window.axe === "object"))) await page.evaluate(axeSource);
  const violations = await page.evaluate(
    async (opts) => (await window.axe.run(document, { resultTypes: ["violations"], ...opts })).violations,
    options,
  );
  const serious = violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  if (serious.length) {
    const lines = serious.map((v) => {
      const targets = v.nodes.map((n) => n.target.join(" ")).slice(0, 3);
      const more = v.nodes.length > 3 ? ` (+${v.nodes.length - 3} more)` : "";
      return `${v.id} [${v.impact}]: ${v.help} — ${targets.join(", ")}${more}`;
    });
    const message = `axe ${label}: ${serious.length} serious or critical violation(s)\n  - ${lines.join("\n  - ")}`;
    if (!reportOnly) throw new AssertionError(message);
    process.stderr.write(`[report only] ${message}\n`);
  }
  return violations;
}

// ---------------------------------------------------------------------------------------
// Running a test script

/** `--name value` and `--flag` command-line options, with defaults. */
export function parseArgs(defaults = {}, argv = process.argv.slice(2)) {
  const out = { ...defaults };
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([^=]+)(?:=(.*))?$/.exec(argv[i]);
    if (!m) throw new Error(`unexpected argument ${argv[i]}`);
    const key = m[1].replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    let value = m[2];
    if (value === undefined) value = i + 1 < argv.length && !argv[i + 1].startsWith("--") ? argv[++i] : "true";
    out[key] = typeof defaults[key] === "number" ? Number(value) : value;
  }
  return out;
}

async function cleanUp(stopOptions) {
  for (const b of [...browsers]) await b.close().catch(() => {});
  for (const s of [...servers]) await s.stop(stopOptions).catch(() => {});
}

/**
 * Runs a test: `body()` resolves to a result object. Prints `{"ok":true,...result}` as the
 * last stdout line and exits 0, or on a failure (or after `timeoutMs`) writes the reason,
 * the servers' log tails and the pages' errors to stderr, prints `{"ok":false,"error":…}`
 * and exits 1. Browsers and servers are closed and stopped in both cases; after a failure
 * the servers' temp dirs (log, database) are kept.
 */
export async function runTest(body, { timeoutMs = 150_000 } = {}) {
  const t0 = Date.now();
  let timer;
  const onSignal = (sig) => {
    process.stderr.write(`interrupted by ${sig}\n`);
    cleanUp().finally(() => process.exit(1));
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  try {
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the test did not end within ${timeoutMs} ms`)), timeoutMs);
    });
    const result = await Promise.race([body(), timeout]);
    clearTimeout(timer);
    assert(
      cspViolations.length === 0,
      () => `the Content-Security-Policy refused something the pages do:\n${cspViolations.slice(0, 10).join("\n")}`,
    );
    await cleanUp();
    process.stdout.write(JSON.stringify({ ok: true, ...result, seconds: (Date.now() - t0) / 1000 }) + "\n");
    process.exit(0);
  } catch (e) {
    clearTimeout(timer);
    let report = `FAILED: ${e && e.stack && !(e instanceof AssertionError) ? e.stack : e && e.message}\n`;
    for (const s of servers) report += `\n--- server ${s.base} log (${s.logPath}), last lines:\n${s.logTail(4000)}\n`;
    if (pageErrors.length) report += `\n--- page errors:\n${pageErrors.slice(-30).join("\n")}\n`;
    report += servers.size ? `\n(the servers' temp dirs, with their logs and databases, are kept)\n` : "";
    process.stderr.write(report);
    await cleanUp({ keep: true });
    const error = e && e.message ? e.message : String(e);
    process.stdout.write(JSON.stringify({ ok: false, error, seconds: (Date.now() - t0) / 1000 }) + "\n");
    process.exit(1);
  }
}
