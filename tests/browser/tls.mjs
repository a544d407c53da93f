// The deputy app over HTTPS from the server's own development certificate, in Debian's
// Chromium: `dienhong dev-cert` makes the certificate (for the name dienhong.test, which the
// browser resolves to loopback), `dienhong demo --tls` serves it. A browser told nothing
// refuses the certificate; a browser that trusts its key (for that browser only, with
// --ignore-certificate-errors-spki-list) loads the page as a secure context (camera and
// microphone allowed, as on a phone across the network), gets the security headers, logs
// in and follows the sitting over wss:// opened with a single-use ticket, with nothing
// refused by the Content-Security-Policy (the harness fails on any refusal).
//
//   node tests/browser/tls.mjs --bin target/debug/dienhong
//
// Prints one JSON line last; exits 0 on success. tests/browser.rs runs it in a network
// namespace of its own with only loopback.

import {
  assert,
  checkAxe,
  launchBrowser,
  loginViaForm,
  newRole,
  parseArgs,
  poll,
  runTest,
  startTlsServer,
} from "./harness.mjs";

const opts = parseArgs({ bin: "" });
const NAME = "dienhong.test";

runTest(async () => {
  const { server, base, resolve, browserArgs } = await startTlsServer({ bin: opts.bin, name: NAME });

  // A browser nobody told about the certificate refuses it.
  const stranger = await launchBrowser({ args: [resolve] });
  const strangerPage = await (await stranger.newContext()).newPage();
  let refusal = null;
  try {
    await strangerPage.goto(`${base}/deputy`);
  } catch (e) {
    refusal = e.message;
  }
  assert(refusal && /ERR_CERT/.test(refusal), () => `an untrusting browser loaded the page: ${refusal}`);
  await stranger.close();

  // This browser trusts the development key, and only this browser.
  const browser = await launchBrowser({ args: browserArgs });
  const context = await newRole(browser, base, { name: "deputy over https" });
  const page = await context.newPage();
  const response = await page.goto(`${base}/deputy`);
  assert(response.status() === 200, `GET /deputy answered ${response.status()}`);
  const headers = response.headers();
  assert(/max-age=\d+/.test(headers["strict-transport-security"] || ""), "no HSTS header over TLS");
  const csp = headers["content-security-policy"] || "";
  assert(csp.includes("frame-ancestors 'none'") && !csp.includes("unsafe-inline"), `CSP: ${csp}`);
  assert(headers["x-content-type-options"] === "nosniff", "no nosniff");
  // Not logged in yet: the page sends the user to the log-in page.
  await page.waitForURL(/\/login/, { timeout: 10_000 });
  await page.waitForLoadState("load");
  const secure = await page.evaluate(() => window.isSecureContext);
  assert(secure === true, "the page over https is not a secure context");
  const media = await page.evaluate(() => Boolean(navigator.mediaDevices && navigator.mediaDevices.getUserMedia));
  assert(media, "camera and microphone are not offered to the page");

  await loginViaForm(page, "DB001");
  await page.waitForURL(/\/deputy/, { timeout: 10_000 });
  await poll(() => page.evaluate(() => !!window.dienhong && window.dienhong.status() === "online"), {
    timeoutMs: 15_000,
    what: "the deputy app online over wss://",
  });
  const wsUrls = [];
  page.on("websocket", (ws) => wsUrls.push(ws.url()));
  // A reload opens a fresh connection: it must carry a ticket, never the token.
  await page.reload();
  await poll(() => page.evaluate(() => !!window.dienhong && window.dienhong.status() === "online"), {
    timeoutMs: 15_000,
    what: "the deputy app online again after a reload",
  });
  assert(wsUrls.length > 0, "no WebSocket seen after the reload");
  for (const u of wsUrls) {
    assert(u.startsWith(`wss://${NAME}:`) && u.includes("ticket=") && !u.includes("token="), `WebSocket URL ${u}`);
  }
  const axe = await checkAxe(page, "deputy over https");
  await server.stop();
  return { refusal: refusal.split("\n")[0], secure, websockets: wsUrls.length, axe_violations: axe ? axe.length : 0 };
});
