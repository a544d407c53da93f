// A deputy whom the SFU has no room for (its admission ceiling set to 0, so every ordinary
// receiver is refused): the deputy app's programme shows that the video server is full, in
// the page's language, and asks again on its own, no sooner than the server's Retry-After.
// The page is photographed in both languages at both widths.
//
//   node tests/browser/overload.mjs --bin target/debug/dienhong [--port N]
//
// Prints one JSON line last; exits 0 on success. tests/browser.rs runs it in a network
// namespace of its own with only loopback.

import { assert, launchBrowser, loginViaForm, newRole, parseArgs, poll, runTest, shoot, startServer, VIEWPORTS } from "./harness.mjs";

const opts = parseArgs({ bin: "", port: 0 });

const FULL = {
  vi: "Máy chủ hình ảnh đang đầy; sẽ tự thử lại",
  en: "The video server is full; retrying shortly",
};

runTest(async () => {
  const server = await startServer({ bin: opts.bin, port: opts.port, env: { DIENHONG__MEDIA__ADMIT_CEILING: "0" } });
  const { base } = server;
  const browser = await launchBrowser();
  const context = await newRole(browser, base, { viewport: VIEWPORTS[0], name: "deputy" });
  const page = await context.newPage();
  // Every answer to the programme's WHEP request, with when it came.
  const whep = [];
  page.on("response", (r) => {
    if (new URL(r.url()).pathname === "/whep" && r.request().method() === "POST") {
      whep.push({ at: Date.now(), status: r.status(), retryAfter: r.headers()["retry-after"] });
    }
  });
  await page.goto(`${base}/deputy`);
  await loginViaForm(page, "DB002");
  const says = (lang) => poll(async () => (await page.textContent("#programme-state")) === FULL[lang], {
    what: `the programme saying the server is full (${lang})`,
    timeoutMs: 15_000,
  });
  await says("vi");
  // It asks again by itself, after Retry-After (5 s) and a random share more.
  await poll(async () => whep.length >= 2, { what: "a second WHEP request", timeoutMs: 20_000 });
  for (const w of whep) assert(w.status === 503 && w.retryAfter === "5", `refused with Retry-After: ${JSON.stringify(w)}`);
  const gap = whep[1].at - whep[0].at;
  assert(gap >= 5_000, `asked again after ${gap} ms, before Retry-After`);
  // Both languages, both widths (the shots switch the language).
  await says("vi");
  const { files, problems } = await shoot(page, "overload-deputy");
  assert(problems.length === 0, `layout: ${problems.join("; ")}`);
  await page.click("#lang");
  await says("en");
  return { refusals: whep.map((w) => w.status), retry_gap_ms: gap, shots: files };
});
