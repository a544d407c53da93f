// A whole sitting in real browsers, every role in its own browser context with a fake camera
// and microphone, everything done by clicking and typing in the pages:
//  1. the chair opens the sitting and five deputies check in from the deputy app;
//  2. a deputy asks to speak and the chair gives the floor;
//  3. every page shows the speaker and the timer, and the deputy pages and the hall display
//     decode the speaker's video;
//  4. the chair opens a named vote, the deputies vote (one by keyboard only, one changes
//     the ballot) and the clerk records one ballot on a deputy's behalf with a reason;
//  5. at the close the hall display's result matches the clerk's roll call and the server's
//     own snapshot;
//  6. a document published at the clerk station appears on the deputy page with its badge;
//  7. the room app comes back by itself after its network is cut and restored;
//  8-9. a revoked log-in goes back to the log-in page, and the chair closes the sitting;
//  10. the clerk creates the next sitting from a roster file, and follows it.
// The other 495 deputies are driven by `dienhong-load --crowd`: they check in once the chair
// opens the sitting and vote when the vote opens, so the console and the display are shown
// working, and counting right, with a full chamber.
// Every page is photographed in both languages at both widths, checked for layout and for
// accessibility (axe-core). Prints one JSON line with the timings it measured.
import { spawn } from "node:child_process";
import {
  assert, poll, sleep, startServer, launchBrowser, newRole, loginViaForm, shoot, checkAxe,
  parseArgs, runTest, apiLogin,
} from "./harness.mjs";

const args = parseArgs({ bin: "", loadBin: "", shots: "true" });
const DEPUTIES = ["DB001", "DB002", "DB003", "DB004", "DB005"];
const PHONE = { width: 390, height: 844 };

/// Presses Tab until the focused element matches `selector` (at most `max` times).
async function tabTo(page, selector, max = 250) {
  for (let i = 0; i < max; i++) {
    if (await page.evaluate((sel) => document.activeElement && document.activeElement.matches(sel), selector)) return;
    await page.keyboard.press("Tab");
  }
  throw new Error(`Tab never reached ${selector}`);
}

const T0 = Date.now();
/// Progress on stderr, so a stuck step shows where it stuck.
const step = (what) => process.stderr.write(`[${((Date.now() - T0) / 1000).toFixed(1)} s] ${what}\n`);

const textOf = (page, sel) => page.locator(sel).first().textContent({ timeout: 10_000 });

/// Starts the crowd: every other deputy follows the sitting, checks in and votes once.
function startCrowd(base) {
  const child = spawn(args.loadBin, ["--url", base, "--crowd", "--skip", DEPUTIES.join(","), "--votes", "1", "--seconds", "240"], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, RUST_LOG: "warn" },
  });
  let out = "";
  let err = "";
  child.stdout.on("data", (d) => { out += d; });
  child.stderr.on("data", (d) => { err += d; });
  const done = new Promise((resolve) => child.on("exit", (code) => resolve({ code, out, err })));
  return { child, done };
}

/// The server's own snapshot, taken over a fresh WebSocket of an observer.
async function serverSnapshot(browser, base) {
  const token = await apiLogin(base, "OBSERVER");
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await page.goto(`${base}/healthz`);
  const snap = await page.evaluate(async (token) => {
    const r = await fetch("/api/ws-ticket", { method: "POST", headers: { authorization: `Bearer ${token}` } });
    const { ticket } = await r.json();
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://${location.host}/ws?ticket=${ticket}`);
      ws.onmessage = async (ev) => {
        const m = JSON.parse(ev.data);
        if (m.type === "welcome") {
          const list = await (await fetch("/api/sittings")).json();
          ws.send(JSON.stringify({ type: "subscribe", v: 1, sitting: list[0].sitting }));
        }
        if (m.type === "snapshot") { ws.close(); resolve(m); }
      };
      ws.onerror = () => reject(new Error("websocket"));
    });
  }, token);
  await ctx.close();
  return snap;
}

runTest(async () => {
  // Speaking-time budgets on, so the console shows them (20 minutes per delegation and item).
  const server = await startServer({ bin: args.bin, env: { DIENHONG__RULES__DELEGATION_BUDGET_SECS: "1200" } });
  const base = server.base;
  const browser = await launchBrowser();
  const timings = {};

  // Log-in: a wrong password says so plainly; each role lands on its own page.
  const chairCtx = await newRole(browser, base, { name: "chair" });
  const chair = await chairCtx.newPage();
  await chair.goto(`${base}/login`);
  await loginViaForm(chair, "CHAIR", "wrong");
  await poll(async () => (await textOf(chair, "#login-error")).length > 0, { what: "the wrong-password message" });
  await loginViaForm(chair, "CHAIR", "demo");
  await chair.waitForURL(`${base}/chair`);
  await chair.locator("#open-sitting").waitFor({ state: "visible" });

  // Deputies log in; from the click on "log in" to an app that is connected and shows its
  // state is timed for each.
  const deputies = [];
  const interactive = [];
  const ready = (page) => poll(() => page.evaluate(() => !!window.dienhong && window.dienhong.status() === "online"), {
    intervalMs: 10, what: "the deputy app to be connected",
  });
  for (const [i, code] of DEPUTIES.entries()) {
    const ctx = await newRole(browser, base, { name: code, viewport: i === 0 ? PHONE : undefined });
    const page = await ctx.newPage();
    await page.goto(`${base}/login`);
    const t = Date.now();
    await loginViaForm(page, code);
    await page.waitForURL(`${base}/deputy`);
    await page.locator("#checkin-button").waitFor({ state: "visible" });
    await ready(page);
    interactive.push(Date.now() - t);
    deputies.push({ code, page, ctx });
  }
  interactive.sort((a, b) => a - b);
  timings.login_to_interactive_ms = { median: interactive[2], max: interactive[4] };
  // The deputy app's weight, loaded afresh with the cache off: everything it loads, all of
  // it from this server.
  const cdp = await deputies[0].ctx.newCDPSession(deputies[0].page);
  await cdp.send("Network.enable");
  await cdp.send("Network.setCacheDisabled", { cacheDisabled: true });
  await deputies[0].page.reload();
  await deputies[0].page.locator("#checkin-button").waitFor({ state: "visible" });
  await ready(deputies[0].page);
  await cdp.send("Network.setCacheDisabled", { cacheDisabled: false });
  const weight = await deputies[0].page.evaluate(() => {
    const entries = [...performance.getEntriesByType("navigation"), ...performance.getEntriesByType("resource")];
    const code = entries.filter((e) => !new URL(e.name).pathname.startsWith("/api/"));
    const size = (list) => list.reduce((n, e) => n + (e.decodedBodySize || 0), 0);
    return {
      // The app itself (page, scripts, styles); the sitting's data (the roster) apart.
      bytes: size(code),
      data: size(entries) - size(code),
      files: code.length,
      foreign: entries.map((e) => e.name).filter((u) => new URL(u).origin !== location.origin && !u.startsWith("blob:")),
    };
  });
  assert(weight.foreign.length === 0, `the deputy app fetched from elsewhere: ${weight.foreign}`);
  assert(weight.bytes > 10_000 && weight.bytes < 150_000, `the deputy app weighs ${weight.bytes} bytes`);

  const clerkCtx = await newRole(browser, base, { name: "clerk" });
  const clerk = await clerkCtx.newPage();
  await clerk.goto(`${base}/login`);
  await loginViaForm(clerk, "CLERK1");
  await clerk.waitForURL(`${base}/clerk`);

  const displayCtx = await newRole(browser, base, { name: "display" });
  const display = await displayCtx.newPage();
  await display.goto(`${base}/display`);
  await loginViaForm(display, "OBSERVER");

  step('1. The chair opens the sitting and takes up item 3; five deputies check in.');
  // 1. The chair opens the sitting and takes up item 3; five deputies check in.
  await chair.click("#open-sitting");
  await chair.locator("#agenda button[data-item='3']").click();
  await poll(async () => (await chair.locator("#agenda li.current").count()) === 1, { what: "the current item on the console" });
  const locations = ["hall", "site", "remote", "site", "hall"];
  for (const [i, d] of deputies.entries()) {
    await d.page.check(`#checkin input[value='${locations[i]}']`);
    await d.page.click("#checkin-button");
  }
  step('the crowd');
  // The rest of the chamber arrives. How long the console's and the display's main
  // threads are busy at a stretch (long tasks) is recorded from here to the vote's close.
  const watchLongTasks = (page) => page.evaluate(() => {
    window.longTasks = [];
    new PerformanceObserver((list) => { for (const e of list.getEntries()) window.longTasks.push(e.duration); })
      .observe({ type: "longtask", buffered: false });
  });
  const longTasks = async (page) => page.evaluate(() => {
    const l = window.longTasks || [];
    return { count: l.length, max_ms: Math.round(Math.max(0, ...l)), total_ms: Math.round(l.reduce((a, b) => a + b, 0)) };
  });
  await watchLongTasks(chair);
  await watchLongTasks(display);
  const crowd = startCrowd(base);
  await poll(async () => (await textOf(chair, "#present-count")) === "500", {
    timeoutMs: 90_000, intervalMs: 500, what: "all 500 deputies present on the console",
  });
  await poll(async () => (await textOf(chair, "#quorum-mark")) === "✔", { what: "the quorum on the console" });

  step('2. One deputy asks to speak; the chair gives the floor from the queue.');
  // 2. One deputy asks to speak; the chair gives the floor from the queue.
  // Another deputy asked first, with a question; the chair moves the discussion ahead.
  const speaker = deputies[1];
  const place = (d) => textOf(d.page, "#my-place");
  await deputies[0].page.click("#ask button[data-kind='question']");
  await poll(async () => (await place(deputies[0])).includes("1 / 1"), { what: "the first request's place" });
  await speaker.page.click("#ask button[data-kind='discussion']");
  await poll(async () => (await place(speaker)).includes("2 / 2"), { what: "the speaker's own place in the queue" });
  // The chair works the queue and the floor with the keyboard: Tab to the first request,
  // Alt+↓ moves it down, ↑ goes to the one now first, Enter gives it the floor.
  await poll(async () => (await chair.locator("#queue li[data-request]").count()) === 2, { what: "two requests on the console" });
  await tabTo(chair, "#queue li[data-request]");
  await chair.keyboard.press("Alt+ArrowDown");
  await poll(async () => (await place(speaker)).includes("1 / 2"), { what: "the speaker moved to the front" });
  await poll(async () => (await place(deputies[0])).includes("2 / 2"), { what: "the question moved back" });
  await poll(() => chair.evaluate(() => document.activeElement && document.activeElement.matches("#queue li:nth-child(2)")), {
    what: "the focus to follow the moved request",
  });
  await chair.keyboard.press("ArrowUp");
  // Where the time from the grant to the first picture goes: the event reaching the
  // speaker's and the display's pages, and the display's first frame.
  const mark = (page) => page.evaluate(() => {
    window.grantMarks = {};
    window.dienhong.client.on("event", (m) => {
      if (m.event.type === "floor_granted" && !window.grantMarks.event) window.grantMarks.event = Date.now();
    });
    const v = document.querySelector("#programme");
    if (v && v.requestVideoFrameCallback) v.requestVideoFrameCallback(() => { window.grantMarks.frame = Date.now(); });
  });
  await mark(display);
  await mark(speaker.page);
  const grantAt = Date.now();
  await chair.keyboard.press("Enter");
  await poll(async () => (await place(deputies[0])).includes("1 / 1"), { what: "the question first once the floor is given" });
  // The rules here cap each delegation at 20 minutes per item: the console counts the
  // speaker's delegation down, and lists the waiting deputy's with its whole budget.
  await poll(async () => {
    const rows = await chair.locator("#budget-list li[data-delegation]").allTextContents();
    return rows.length >= 1 && rows.some((r) => /1[89]:\d\d|20:00/.test(r));
  }, { what: "each delegation's speaking time left on the console" });

  step('3. Every page shows the speaker and the timer; the pictures are decoded.');
  // 3. Every page shows the speaker and the timer; the pictures are decoded.
  const name = await speaker.page.evaluate((code) => window.dienhong.client.actor(code).name, speaker.code);
  for (const [label, page] of [["chair", chair], ["display", display], ...deputies.map((d) => [d.code, d.page])]) {
    await poll(async () => (await textOf(page, "#speaker-name")).includes(name), { what: `${label} to show the speaker ${name}` });
    await poll(async () => /\d+:\d\d/.test(await textOf(page, "#speaker-timer")), { what: `${label} to show the timer` });
  }
  await poll(async () => (await speaker.page.evaluate(() => window.dienhong.media.publisher())) === "live", {
    timeoutMs: 20_000, what: "the speaker's camera to go live",
  });
  await poll(async () => (await display.evaluate(() => window.dienhongMedia.framesDecoded())) > 0, {
    timeoutMs: 20_000, intervalMs: 25, what: "the display to decode the speaker's video",
  });
  // As the page's own statistics tell it (polled; Chromium refreshes them at intervals).
  timings.grant_to_frames_decoded_stat_ms = Date.now() - grantAt;
  // A decoded frame reaches the screen a little later: wait for the display's frame
  // callback rather than read it in the same instant (it was read too early once).
  await poll(async () => display.evaluate(() => Boolean(window.grantMarks.frame)), {
    timeoutMs: 5_000, intervalMs: 25, what: "the display to put the speaker's first frame on screen",
  });
  const marks = async (page) => {
    const m = await page.evaluate(() => window.grantMarks);
    return { event_ms: m.event ? m.event - grantAt : null, frame_ms: m.frame ? m.frame - grantAt : null };
  };
  const onDisplay = await marks(display);
  // The first picture the display put on screen (requestVideoFrameCallback), the figure a
  // person sees.
  timings.grant_to_first_frame_ms = onDisplay.frame_ms;
  timings.grant_event_at_display_ms = onDisplay.event_ms;
  timings.grant_event_at_speaker_ms = (await marks(speaker.page)).event_ms;
  // The speaker's own page shows the speaker's own preview; the SFU sends nobody their own
  // picture back.
  for (const d of deputies.filter((x) => x !== speaker)) {
    await poll(async () => (await d.page.evaluate(() => window.dienhong.media.frames())) > 0, {
      timeoutMs: 30_000, what: `${d.code}'s page to decode the speaker's video`,
    }).catch(async (e) => {
      // Say where the page's programme stood (refused as full, connecting, receiving …).
      const programme = await d.page.evaluate(() => window.dienhong.media.programme()).catch(() => "unknown");
      e.message += `; its programme was ${programme}`;
      throw e;
    });
  }
  // The chair ends the speech with the keyboard.
  await tabTo(chair, "#revoke");
  await chair.keyboard.press("Enter");
  await poll(async () => !(await display.evaluate(() => document.querySelector("#speaker-name")?.textContent || "")).includes(name), {
    what: "the display to drop the speaker",
  });

  step('4. A named vote.');
  // 4. A named vote.
  // The chair opens it with the keyboard only.
  await tabTo(chair, "#vote-form [name=question]");
  await chair.keyboard.type("Thông qua Nghị quyết về chuyển đổi số?");
  await tabTo(chair, "#vote-form [name=window]");
  await chair.keyboard.press("Control+A");
  await chair.keyboard.type("300");
  await chair.keyboard.press("Enter");
  for (const d of deputies) await d.page.locator("#vote-panel").waitFor({ state: "visible" });
  step('ballots');
  // DB001 votes with the keyboard only: the panel takes the focus when it opens.
  await tabTo(deputies[0].page, "#vote-panel button[data-choice='yes']");
  await deputies[0].page.keyboard.press("Enter");
  await deputies[1].page.click("#vote-panel button[data-choice='no']");
  await deputies[2].page.click("#vote-panel button[data-choice='yes']");
  await deputies[3].page.click("#vote-panel button[data-choice='abstain']");
  for (const d of deputies.slice(0, 4)) {
    await poll(async () => (await textOf(d.page, "#vote-recorded")).length > 3, { what: `${d.code}'s confirmation` });
  }
  // DB002 changes the ballot.
  await deputies[1].page.click("#vote-panel button[data-choice='yes']");
  await poll(async () => (await deputies[1].page.getAttribute("#vote-panel button[data-choice='yes']", "aria-pressed")) === "true", {
    what: "the changed ballot to be confirmed",
  });
  step('ballot on behalf');
  // The clerk records DB005's ballot on their behalf.
  await clerk.fill("#behalf-form [name=deputy]", "DB005");
  await clerk.selectOption("#behalf-form [name=choice]", "no");
  await clerk.fill("#behalf-form [name=reason]", "Thiết bị của đại biểu bị hỏng");
  await clerk.click("#behalf-form [type=submit]");
  await poll(async () => (await textOf(chair, "#vote-count")).startsWith("500 / 500"), {
    timeoutMs: 90_000, intervalMs: 500, what: "500 ballots on the console",
  });


  step("5. The close: the display, the clerk's roll call and the server agree.");
  // 5. The close: the display, the clerk's roll call and the server agree.
  await tabTo(chair, "#close-vote");
  await chair.keyboard.press("Enter");
  timings.chair_long_tasks = await longTasks(chair);
  timings.display_long_tasks = await longTasks(display);
  // The crowd stops once it has seen its vote closed.
  const crowdResult = await crowd.done;
  assert(crowdResult.code === 0, () => `the crowd failed (${crowdResult.code}): ${crowdResult.out}\n${crowdResult.err.slice(-2000)}`);
  const crowdReport = JSON.parse(crowdResult.out.trim().split("\n").pop());
  await display.locator("#result").waitFor({ state: "visible", timeout: 10_000 });
  const snap = await serverSnapshot(browser, base);
  const vote = snap.state.votes["1"];
  assert(vote.status.status === "closed", `vote 1 is ${JSON.stringify(vote.status)}`);
  const r = vote.status.result;
  const expected = { yes: 3 + crowdReport.ballots.yes, no: 1 + crowdReport.ballots.no, abstain: 1 + crowdReport.ballots.abstain };
  assert(r.tally.yes === expected.yes && r.tally.no === expected.no && r.tally.abstain === expected.abstain,
    `server tally ${JSON.stringify(r.tally)}, expected ${JSON.stringify(expected)}`);
  assert(r.participants === 500 && r.present === 500, `participants ${r.participants}, present ${r.present}`);
  assert(vote.ballots.DB005.on_behalf && vote.ballots.DB005.on_behalf.clerk === "CLERK1", "DB005's ballot on behalf");
  assert(vote.ballots.DB002.changes === 1, "DB002's change");
  for (const [choice, n] of Object.entries(r.tally)) {
    const shown = await textOf(display, `#result-${choice}`);
    assert(shown.includes(String(n)), `the display shows ${shown} for ${choice}, the server ${n}`);
    const onConsole = await textOf(chair, `#result-${choice}`);
    assert(onConsole.includes(String(n)), `the console shows ${onConsole} for ${choice}, the server ${n}`);
  }
  assert((await display.getAttribute("#result", "data-passed")) === String(r.passed), "the display's verdict");
  const roll = await clerk.locator("#roll-call").textContent();
  assert(roll.includes("Thiết bị của đại biểu bị hỏng"), "the roll call shows the reason for the ballot on behalf");
  for (const d of DEPUTIES) {
    const n = await clerk.evaluate((code) => window.dienhong.client.actor(code).name, d);
    assert(roll.includes(n), `the roll call lists ${d}`);
  }

  step('6. A document published at the clerk station reaches the deputy with its badge.');
  // 6. A document published at the clerk station reaches the deputy with its badge.
  // The clerk picks a file: it is uploaded at once, with its progress, and the server's own
  // type, size and hash fill the form.
  await clerk.selectOption("#publish-form [name=item]", "3");
  const pdfBytes = Buffer.from("%PDF-1.4\n% To trinh du thao Nghi quyet\n%%EOF\n");
  await clerk.setInputFiles("#publish-form [name=file]", { name: "tờ trình.pdf", mimeType: "application/pdf", buffer: pdfBytes });
  await poll(async () => (await clerk.inputValue("#publish-form [name=sha256]")).length === 64, { what: "the upload's hash" });
  assert(await clerk.inputValue("#publish-form [name=media_type]") === "application/pdf", "the server's media type");
  assert(await clerk.inputValue("#publish-form [name=size]") === String(pdfBytes.length), "the server's size");
  await clerk.fill("#publish-form [name=title]", "Tờ trình dự thảo Nghị quyết");
  await clerk.click("#publish-form [type=submit]");
  const reader = deputies[0].page;
  await poll(async () => (await reader.locator("#documents li .badge").count()) === 1, { what: "the new document's badge" });
  // Opening it shows the file in the browser's own viewer (a new tab) and counts as read.
  const [viewer] = await Promise.all([
    reader.context().waitForEvent("page"),
    reader.click("#documents li button"),
  ]);
  await poll(async () => viewer.url().includes("/documents/1/versions/1?link="), { what: "the viewer to open the file's link" });
  const served = await reader.evaluate(async (url) => {
    const r = await fetch(url);
    return { status: r.status, type: r.headers.get("content-type"), size: (await r.arrayBuffer()).byteLength };
  }, viewer.url());
  assert(served.status === 200 && served.type === "application/pdf" && served.size === pdfBytes.length, `the file as uploaded: ${JSON.stringify(served)}`);
  await viewer.close();
  await poll(async () => (await reader.locator("#documents li .badge").count()) === 0, { what: "the badge to go once read" });
  // The deputy finds it again by typing its title without diacritics.
  await reader.fill("#search-words", "to trinh du thao nghi quyet");
  await poll(async () => {
    await reader.click("#search-submit");
    return (await reader.locator("#search-hits li").count()) === 1;
  }, { what: "the document found by its title typed without diacritics" });
  assert((await reader.textContent("#search-hits li")).includes("Tờ trình dự thảo Nghị quyết"), "the hit's title");

  step('7. The room app publishes, loses its network and comes back by itself.');
  // 7. The room app publishes, loses its network and comes back by itself.
  const roomCtx = await newRole(browser, base, { name: "room" });
  const room = await roomCtx.newPage();
  await room.goto(`${base}/room?autostart=1`);
  await loginViaForm(room, "SITE01");
  await poll(async () => (await room.evaluate(() => window.dienhongMedia && window.dienhongMedia.state())) === "live", {
    timeoutMs: 20_000, what: "the room app to go live",
  });
  // The chair's console shows the site: a picture in its tile and its sound level.
  await poll(async () => (await chair.evaluate(() => {
    const v = document.querySelector(".site[data-participant='SITE01'] video");
    return v ? v.getVideoPlaybackQuality().totalVideoFrames : 0;
  })) > 0, { timeoutMs: 20_000, what: "the site's picture on the chair's console" });
  await poll(async () => (await chair.evaluate(() => {
    const l = document.querySelector(".site[data-participant='SITE01'] .level > i");
    return l ? parseFloat(l.style.width) || 0 : 0;
  })) > 0, { timeoutMs: 20_000, what: "the site's sound level on the chair's console" });
  // The chair mutes the site's microphone on the console; the server confirms it.
  const muteButton = chair.locator(".site[data-participant='SITE01'] button[data-participant]");
  await muteButton.click();
  await poll(async () => (await muteButton.getAttribute("aria-pressed")) === "true", { what: "the site muted on the console" });
  await muteButton.click();
  await poll(async () => (await muteButton.getAttribute("aria-pressed")) === "false", { what: "the site unmuted" });
  await roomCtx.setOffline(true);
  await poll(async () => (await room.evaluate(() => window.dienhong.status())) !== "online", {
    timeoutMs: 30_000, what: "the room app to notice it is offline",
  });
  await sleep(2000);
  await roomCtx.setOffline(false);
  await poll(async () => (await room.evaluate(() => window.dienhong.status())) === "online", {
    timeoutMs: 30_000, what: "the room app to reconnect by itself",
  });
  await poll(async () => (await room.evaluate(() => window.dienhongMedia.state())) === "live", {
    timeoutMs: 30_000, what: "the room app to publish again",
  });

  step("8. A revoked log-in sends the deputy back to the log-in page.");
  // 8. The token of DB005's tab is revoked (as when it expires, or is logged out elsewhere):
  // the page goes back to log in, says why, and holds on to nothing.
  const gone = deputies[4].page;
  const token = await gone.evaluate(() => JSON.parse(sessionStorage.getItem("dh.auth")).token);
  const out = await fetch(`${base}/api/logout`, { method: "POST", headers: { authorization: `Bearer ${token}` } });
  assert(out.status === 204, `logout answered ${out.status}`);
  await gone.waitForURL(/\/login\?/, { timeout: 15_000 });
  await poll(async () => (await textOf(gone, "#login-error")).length > 0, { what: "the expired log-in to be explained" });
  assert(await gone.evaluate(() => sessionStorage.getItem("dh.auth") === null), "the revoked token is forgotten");
  await loginViaForm(gone, "DB005");
  await gone.waitForURL(`${base}/deputy`);
  await gone.locator("#checked").waitFor({ state: "visible" });

  step('screenshots and accessibility');
  // Every page, both languages, both widths; accessibility.
  if (args.shots === "true") {
    for (const [label, page] of [["chair", chair], ["clerk", clerk], ["display", display], ["room", room], ["deputy", deputies[0].page]]) {
      await shoot(page, label);
      await checkAxe(page, label);
    }
    const publicPage = await (await newRole(browser, base, { name: "public" })).newPage();
    await publicPage.goto(`${base}/`);
    await publicPage.locator("#sittings section, #sittings article, #sittings .card").first().waitFor();
    await shoot(publicPage, "public");
    await checkAxe(publicPage, "public");
    const loginPage = await (await newRole(browser, base, { name: "login" })).newPage();
    await loginPage.goto(`${base}/login`);
    await shoot(loginPage, "login");
    await checkAxe(loginPage, "login");
  }
  step("9. The chair closes the sitting, confirming it in a dialog.");
  // 9. Escape keeps the sitting open; confirming closes it, and the deputies see it.
  await chair.click("#close-sitting");
  await chair.locator("#confirm-close").waitFor({ state: "visible" });
  await chair.keyboard.press("Escape");
  await chair.locator("#confirm-close").waitFor({ state: "hidden" });
  await sleep(500);
  assert((await serverSnapshot(browser, base)).state.phase === "open", "Escape closed the sitting");
  await chair.click("#close-sitting");
  await chair.click("#confirm-close-yes");
  await poll(async () => (await serverSnapshot(browser, base)).state.phase === "closed", { what: "the sitting to close" });
  await poll(async () => (await textOf(deputies[0].page, "#phase-note")).length > 0, { what: "the deputy app to say the sitting is closed" });

  step("10. The clerk creates the next sitting from a roster file; it runs at once.");
  // 10. No restart: the new sitting is listed at the clerk station and on the public page, and
  // the clerk station follows it from its link.
  const roster = "code\tname\tdelegation\troles\nCHAIR\tChủ tọa\t01\tchair,deputy\n"
    + "DB001\tĐại biểu Một\t01\tdeputy\nDB002\tĐại biểu Hai\t79\tdeputy\nCLERK1\tThư ký\t\tclerk\n";
  await clerk.fill("#new-sitting [name=id]", "phien-tiep-theo");
  await clerk.fill("#new-sitting [name=title]", "Phiên họp tiếp theo");
  await clerk.setInputFiles("#new-sitting [name=roster]", { name: "danh-sach.tsv", mimeType: "text/tab-separated-values", buffer: Buffer.from(roster) });
  await clerk.fill("#new-sitting [name=agenda]", "Khai mạc\nThảo luận\nBế mạc");
  await clerk.click("#new-sitting-submit");
  await poll(async () => (await clerk.locator(".sittings-list li").count()) === 2, { what: "the new sitting in the clerk's list" });
  const listed = await (await fetch(`${base}/api/sittings`)).json();
  const next = listed.find((x) => x.sitting === "phien-tiep-theo");
  assert(next && next.phase === "scheduled" && next.agenda.length === 3, `the new sitting: ${JSON.stringify(next)}`);
  await clerk.click(".sittings-list a[href*='phien-tiep-theo']");
  await poll(async () => (await textOf(clerk, "#sitting-title")).includes("Phiên họp tiếp theo"), { what: "the clerk station to follow the new sitting" });

  return {
    timings, deputy_app: { bytes: weight.bytes, files: weight.files, data_bytes: weight.data }, present: r.present, ballots: r.participants,
    crowd: { checked_in: crowdReport.checked_in, ack_ms: crowdReport.ack_ms },
  };
}, { timeoutMs: 240_000 });
