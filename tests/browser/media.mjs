// The media plane end to end in a real browser (Debian's Chromium, headless, fake camera
// and microphone): the room app (/room) publishes over WHIP as the chamber, the hall display
// (/display) logs in through its form as the observer and pulls the programme over WHEP,
// and the display's own WebRTC stats must show decoded video frames. A room opened with a
// token the server refuses (WHIP answers 401) must drop it and show its login form.
// Both pages are photographed in both languages at both widths and checked with axe-core.
//
//   node tests/browser/media.mjs --bin target/debug/dienhong [--port N] [--seconds 40] [--min-frames 30]
//
// Prints one JSON line last; exits 0 on success. tests/browser.rs runs it in a network
// namespace of its own with only loopback.

import {
  apiLogin,
  assert,
  checkAxe,
  launchBrowser,
  loginViaForm,
  newRole,
  parseArgs,
  poll,
  runTest,
  screenshotDir,
  shoot,
  sleep,
  startServer,
} from "./harness.mjs";

const opts = parseArgs({ bin: "", port: 0, seconds: 40, minFrames: 30 });

const mediaState = (page) => page.evaluate(() => (window.dienhongMedia ? window.dienhongMedia.state() : null));

runTest(async () => {
  const server = await startServer({ bin: opts.bin, port: opts.port });
  const { base } = server;
  const browser = await launchBrowser();
  const token = await apiLogin(base, "CHAMBER");

  // The chamber's room app, started by a kiosk link with its token in the fragment.
  const roomContext = await newRole(browser, base, { name: "chamber" });
  const room = await roomContext.newPage();
  await room.goto(`${base}/room?autostart=1#token=${token}`);

  // The hall display, logged in through its form as a person would.
  const displayContext = await newRole(browser, base, { name: "observer" });
  const display = await displayContext.newPage();
  await display.goto(`${base}/display`);
  await loginViaForm(display, "OBSERVER", "demo");
  await display.locator("#login").waitFor({ state: "hidden", timeout: 10_000 });

  // Pictures: the display decodes what the room publishes.
  const t0 = Date.now();
  let frames = 0;
  let firstFrameMs = null;
  while (Date.now() - t0 < opts.seconds * 1000) {
    frames = await display.evaluate(() => (window.dienhongMedia ? window.dienhongMedia.framesDecoded() : 0));
    if (frames > 0 && firstFrameMs === null) firstFrameMs = Date.now() - t0;
    if (frames >= opts.minFrames) break;
    await sleep(250);
  }
  const roomState = await mediaState(room);
  const displayState = await mediaState(display);
  // What the display decoded last: the layer it receives.
  const frameSize = await display.evaluate(async () => {
    let size = null;
    (await window.dienhongMedia.stats()).forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "video" && s.frameWidth) size = [s.frameWidth, s.frameHeight];
    });
    return size;
  });
  const media = { frames_decoded: frames, room_state: roomState, display_state: displayState, frame_size: frameSize };
  assert(roomState === "live", () => `the room app is "${roomState}", not "live": ${JSON.stringify(media)}`);
  assert(
    frames >= opts.minFrames,
    () => `the display decoded ${frames} frame(s) in ${opts.seconds} s, fewer than ${opts.minFrames}: ${JSON.stringify(media)}`,
  );

  // How the pages look while live, in both languages at both widths; accessibility.
  const shots = [];
  for (const [page, name] of [
    [room, "room"],
    [display, "display"],
  ]) {
    shots.push(...(await shoot(page, name)).files);
    await checkAxe(page, name);
  }
  // Still receiving after all that resizing and switching of languages.
  const framesAfter = await display.evaluate(() => window.dienhongMedia.framesDecoded());
  assert(framesAfter > frames, `the display stopped decoding while it was looked at (${frames} then ${framesAfter} frames)`);

  // A kiosk link with a token the server refuses: WHIP answers 401, the page must drop the
  // token and ask for a login instead of retrying for ever.
  const kioskContext = await newRole(browser, base, { name: "kiosk with a bad token" });
  const kiosk = await kioskContext.newPage();
  const whipAnswers = [];
  kiosk.on("response", (r) => {
    if (new URL(r.url()).pathname === "/whip") whipAnswers.push(r.status());
  });
  const t1 = Date.now();
  await kiosk.goto(`${base}/room?autostart=1#token=not-a-valid-token`);
  await poll(() => kiosk.locator("#login").isVisible(), {
    timeoutMs: 15_000,
    what: "the room app to show its login form after the server refused its token",
  });
  const loginAfterMs = Date.now() - t1;
  const kept = await kiosk.evaluate(() => sessionStorage.getItem("token"));
  assert(kept === null, `the room app kept the refused token in sessionStorage: ${kept}`);
  assert(whipAnswers.includes(401), `the room app never met a 401 from /whip (answers: ${whipAnswers.join(", ")})`);
  shots.push(...(await shoot(kiosk, "room-login")).files);
  await checkAxe(kiosk, "room-login");

  return {
    ...media,
    first_frame_ms: firstFrameMs,
    frames_after_checks: framesAfter,
    invalid_token: { whip_answers: whipAnswers, login_shown_after_ms: loginAfterMs },
    screenshots: { count: shots.length, dir: screenshotDir() },
  };
});
