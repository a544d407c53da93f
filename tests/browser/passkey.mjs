// Ballots confirmed with a passkey, in Debian's Chromium with its virtual authenticator (the
// DevTools WebAuthn domain), over HTTPS from the server's own development certificate
// (dienhong.test, trusted by this browser only; passkeys are bound to that name).
//
// A deputy registers a passkey from the deputy app (a second one only with a step-up of the
// first) and checks in; the chair opens a vote that
// asks for a passkey; the deputy votes by clicking, and the ballot goes with an assertion
// for that vote and that choice, which the event records. Then, from the deputy's own page,
// the server must refuse with a typed code: a ballot without an assertion
// (step_up_required), with one made for another choice or another vote (step_up_mismatch),
// and one replayed (step_up_used). A clerk without a passkey cannot enter a ballot on a
// deputy's behalf (no_passkey); with one registered, the entry goes through. The audit trail
// holds the registrations and every check. Last, the clerk exports the minutes from the
// station in both languages.
//
//   node tests/browser/passkey.mjs --bin target/debug/dienhong
//
// Prints one JSON line last; exits 0 on success. tests/browser.rs runs it in a network
// namespace of its own with only loopback.

import fs from "node:fs";
import path from "node:path";
import {
  VIEWPORTS,
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
  startTlsServer,
} from "./harness.mjs";

const opts = parseArgs({ bin: "" });
const NAME = "dienhong.test";
const DEPUTY = "DB001";
const OTHER = "DB002";

/** A virtual platform authenticator (user verification by "fingerprint") on the page. */
async function virtualAuthenticator(context, page) {
  const cdp = await context.newCDPSession(page);
  await cdp.send("WebAuthn.enable", { enableUI: false });
  const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: {
      protocol: "ctap2",
      transport: "internal",
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  return {
    credentials: async () => (await cdp.send("WebAuthn.getCredentials", { authenticatorId })).credentials,
    removeAll: () => cdp.send("WebAuthn.clearCredentials", { authenticatorId }),
  };
}

async function rolePage(browser, base, code, path, options = {}) {
  const context = await newRole(browser, base, { name: code, ...options });
  const page = await context.newPage();
  await page.goto(`${base}/login`);
  await loginViaForm(page, code);
  await page.waitForURL(new RegExp(path), { timeout: 10_000 });
  await poll(() => page.evaluate(() => !!window.dienhong && window.dienhong.status() === "online"), {
    timeoutMs: 15_000,
    what: `${code} online`,
  });
  return { context, page };
}

async function registerPasskey(page, who) {
  await page.locator("#passkey-status[data-count='0']").waitFor({ timeout: 10_000 });
  await page.click("#passkey-register");
  await poll(async () => (await page.locator("#passkey-status").getAttribute("data-count")) === "1", {
    timeoutMs: 15_000,
    what: `${who}'s passkey registered`,
  });
}

runTest(async () => {
  const { server, base, browserArgs } = await startTlsServer({
    bin: opts.bin,
    name: NAME,
    env: { DIENHONG__TRUST__PASSKEY_RP_ID: NAME },
  });
  const browser = await launchBrowser({ args: browserArgs });

  // The chair opens the sitting and takes up the first item.
  const chair = (await rolePage(browser, base, "CHAIR", "/chair")).page;
  await chair.click("#open-sitting");
  await chair.locator("#agenda button[data-item='1']").click();
  await poll(async () => (await chair.locator("#agenda li.current").count()) === 1, { what: "the current item" });

  // The deputy registers a passkey from the deputy app, then checks in.
  const deputy = await rolePage(browser, base, DEPUTY, "/deputy");
  const page = deputy.page;
  const authenticator = await virtualAuthenticator(deputy.context, page);
  await registerPasskey(page, DEPUTY);
  const creds = await authenticator.credentials();
  assert(creds.length === 1, `the authenticator holds ${creds.length} credentials`);
  // With a passkey on the account, a log-in alone cannot add another: the server wants a
  // step-up of the existing one, which the deputy app gives (the authenticator here holds
  // both, as a second device would hold the new one).
  const bare = await page.evaluate(async () => {
    const r = await fetch("/api/passkeys/options", {
      method: "POST",
      headers: { authorization: `Bearer ${window.dienhong.client.auth.token}`, "content-type": "application/json" },
      body: "{}",
    });
    return { status: r.status, code: (await r.json()).code };
  });
  assert(bare.status === 403 && bare.code === "step_up_required", `a second passkey without a step-up: ${JSON.stringify(bare)}`);
  // A second device: the first passkey confirms, then the device (this authenticator with
  // the first credential taken out, as a new phone would be) makes its own.
  const proof = await page.evaluate(async () => {
    const { enrolProof } = await import("/js/passkey.js");
    return enrolProof(window.dienhong.client.auth);
  });
  await authenticator.removeAll();
  const second = await page.evaluate(async (stepUp) => {
    const { registerPasskey, listPasskeys } = await import("/js/passkey.js");
    const auth = window.dienhong.client.auth;
    await registerPasskey(auth, stepUp);
    return (await listPasskeys(auth)).length;
  }, proof);
  assert(second === 2, `the account has ${second} passkeys after adding a second with a step-up`);
  const replayedEnrol = await page.evaluate(async (stepUp) => {
    const { registerPasskey } = await import("/js/passkey.js");
    try {
      await registerPasskey(window.dienhong.client.auth, stepUp);
      return "accepted";
    } catch (e) {
      return e.code;
    }
  }, proof);
  assert(replayedEnrol === "step_up_used", `an enrolment step-up used twice: ${replayedEnrol}`);
  await page.click("#checkin-button");
  await page.locator("#checked").waitFor({ state: "visible" });

  // Every ballot event the deputy's page receives, as sent.
  const ballots = [];
  page.on("websocket", (ws) => ws.on("framereceived", ({ payload }) => {
    if (typeof payload === "string" && payload.includes("ballot_cast")) ballots.push(payload);
  }));
  await page.reload();
  await poll(() => page.evaluate(() => window.dienhong && window.dienhong.status() === "online"), { what: "online again" });

  // The chair opens a vote that asks for a passkey with each ballot.
  await chair.fill("#vote-form [name=question]", "Thông qua Nghị quyết về chuyển đổi số?");
  await chair.fill("#vote-form [name=window]", "600");
  await chair.check("#vote-form [name=step_up]");
  await chair.click("#open-vote");
  await page.locator("#vote-panel").waitFor({ state: "visible", timeout: 10_000 });
  const note = await page.locator("#vote-stepup").innerText();
  assert(note.trim().length > 0, "the deputy app does not say the vote asks for a passkey");
  const vote = await page.evaluate(() => window.dienhong.state().open_vote);

  // The deputy votes by clicking: the assertion is made for this vote and this choice.
  await page.click("#vote-panel button[data-choice='yes']");
  await poll(() => page.evaluate((me) => window.dienhong.state().votes[window.dienhong.state().open_vote].ballots[me]?.choice === "yes", DEPUTY), {
    timeoutMs: 15_000,
    what: "the stepped-up ballot recorded",
  });
  await poll(() => ballots.some((b) => b.includes('"step_up":true') && b.includes(DEPUTY)), {
    what: "a ballot_cast event that records the step-up",
  });
  const signCount = Math.max(...(await authenticator.credentials()).map((c) => c.signCount));
  assert(signCount >= 1, `the authenticator signed ${signCount} times`);
  await shoot(page, "deputy-passkey-vote");

  // What the server refuses, each with its code, sent from the deputy's own page.
  const refusals = await page.evaluate(async ({ vote }) => {
    const { confirmBallot } = await import("/js/passkey.js");
    const c = window.dienhong.client;
    const send = async (command, stepUp) => {
      try {
        await c.command(command, stepUp);
        return "accepted";
      } catch (e) {
        return e.code;
      }
    };
    const cast = (choice) => ({ command: "cast_ballot", vote, choice });
    const proof = (v, choice) => confirmBallot(c.auth, { sitting: c.sitting, vote: v, choice });
    const out = {};
    out.without = await send(cast("no"));
    out.otherChoice = await send(cast("no"), await proof(vote, "yes"));
    out.otherVote = await send(cast("no"), await proof(vote + 1, "no"));
    const once = await proof(vote, "abstain");
    out.first = await send(cast("abstain"), once);
    out.replayed = await send(cast("no"), once);
    out.replayedSameChoice = await send(cast("abstain"), once);
    // The same command sent again (a resend after a lost connection): the first outcome.
    const again = await proof(vote, "yes");
    const id = `retry-${Date.now()}`;
    const msg = { type: "command", v: 2, command_id: id, command: cast("yes"), step_up: again };
    const answer = () => {
      const p = new Promise((resolve, reject) => c.pending.set(id, { msg, resolve, reject }));
      c.send(msg);
      return p.then((a) => a.seq, (e) => e.code);
    };
    out.resent = [await answer(), await answer()];
    return out;
  }, { vote });
  assert(refusals.without === "step_up_required", `without an assertion: ${refusals.without}`);
  assert(refusals.otherChoice === "step_up_mismatch", `for another choice: ${refusals.otherChoice}`);
  assert(refusals.otherVote === "step_up_mismatch", `for another vote: ${refusals.otherVote}`);
  assert(refusals.first === "accepted", `a fresh assertion: ${refusals.first}`);
  assert(refusals.replayed === "step_up_used", `replayed: ${refusals.replayed}`);
  assert(refusals.replayedSameChoice === "step_up_used", `replayed for the same ballot: ${refusals.replayedSameChoice}`);
  assert(typeof refusals.resent[0] === "number" && refusals.resent[0] === refusals.resent[1], `a resent command: ${refusals.resent}`);
  // An ack may arrive before the events of its commit: the state shows the ballot once they do.
  await poll(
    () => page.evaluate(({ vote, me }) => window.dienhong.state().votes[vote].ballots[me]?.choice === "yes", { vote, me: DEPUTY }),
    { what: "the resent ballot's choice (yes) in the deputy's state" },
  );

  // A clerk enters a ballot for a deputy: not without the clerk's own passkey.
  const clerk = await rolePage(browser, base, "CLERK1", "/clerk");
  const cp = clerk.page;
  await virtualAuthenticator(clerk.context, cp);
  await cp.fill("#checkin-form [name=deputy]", OTHER);
  await cp.click("#checkin-submit");
  await poll(() => cp.evaluate((d) => d in window.dienhong.state().present, OTHER), { what: `${OTHER} checked in by the clerk` });
  const enter = async () => {
    await cp.fill("#behalf-form [name=deputy]", OTHER);
    await cp.selectOption("#behalf-form [name=choice]", "no");
    await cp.fill("#behalf-form [name=reason]", "Thiết bị của đại biểu bị hỏng");
    await cp.click("#behalf-submit");
  };
  await enter();
  await poll(async () => (await cp.locator("#notice[data-kind='error']").count()) === 1, { what: "the clerk told to register a passkey" });
  const told = await cp.locator("#notice").innerText();
  const hasBallot = () => cp.evaluate(({ d, v }) => window.dienhong.state().votes[v].ballots[d]?.choice || null, { d: OTHER, v: vote });
  assert((await hasBallot()) === null, "an entry without the clerk's passkey was recorded");
  await registerPasskey(cp, "CLERK1");
  await enter();
  await poll(async () => (await hasBallot()) === "no", { timeoutMs: 15_000, what: "the clerk's stepped-up entry recorded" });
  await shoot(cp, "clerk-passkey");

  // The audit trail: both registrations and every check, with its outcome.
  const audit = await cp.evaluate(async () => {
    const r = await fetch("/api/audit?limit=1000", { headers: { authorization: `Bearer ${window.dienhong.client.auth.token}` } });
    return r.json();
  });
  const registered = audit.filter((e) => e.entry.kind === "passkey_registered").map((e) => e.entry.actor);
  const checks = audit.filter((e) => e.entry.kind === "step_up").map((e) => `${e.entry.actor}:${e.entry.outcome}`);
  assert(registered.filter((a) => a === DEPUTY).length === 2 && registered.includes("CLERK1"), `registrations audited: ${registered}`);
  for (const want of [`${DEPUTY}:given`, `${DEPUTY}:step_up_mismatch`, `${DEPUTY}:step_up_used`, "CLERK1:given"]) {
    assert(checks.includes(want), `the audit trail lacks ${want}: ${checks}`);
  }
  assert(!JSON.stringify(audit).includes("signature"), "the audit trail holds an assertion");

  // The clerk exports the minutes from the station, in both languages: the page names the
  // clerk's entry and carries the passkey marks and the signed checkpoint of the vote's close.
  await chair.click("#vote-live button[data-action='close']");
  await poll(() => cp.evaluate(async (v) => {
    const c = window.dienhong.client;
    if (window.dienhong.state().votes[v].status.status !== "closed") return false;
    const r = await fetch(`/api/sittings/${c.sitting}/minutes?format=json`, { headers: { authorization: `Bearer ${c.auth.token}` } });
    return (await r.json()).checkpoints.length > 0;
  }, vote), { timeoutMs: 15_000, what: "the vote closed and its checkpoint signed" });
  const minutes = {};
  for (const round of [0, 1]) {
    if (round === 1) await cp.click("#lang");
    const [download] = await Promise.all([
      cp.waitForEvent("download"),
      cp.click("#minutes-export button[data-format='html']"),
    ]);
    const html = fs.readFileSync(await download.path(), "utf8");
    const lang = /<html lang="(\w+)">/.exec(html)[1];
    minutes[lang] = { name: download.suggestedFilename(), bytes: html.length };
    assert(html.includes("Thiết bị của đại biểu bị hỏng") && html.includes("✓"), `the ${lang} minutes lack the roll call`);
    assert(html.includes("vote_closed:1"), `the ${lang} minutes lack the vote's checkpoint`);
    const viewer = await (await browser.newContext()).newPage();
    await viewer.setContent(html);
    for (const viewport of VIEWPORTS) {
      await viewer.setViewportSize(viewport);
      await viewer.screenshot({ path: path.join(screenshotDir(), `minutes-${lang}-${viewport.width}.png`), fullPage: true });
    }
    await viewer.close();
  }
  assert(minutes.vi && minutes.en, `minutes in ${Object.keys(minutes)}`);

  const axe = await checkAxe(page, "deputy with a passkey vote");
  await server.stop();
  return {
    refusals,
    clerk_without_passkey: told,
    audit_checks: checks.length,
    sign_count: signCount,
    second_passkey_without_step_up: bare.code,
    enrol_replayed: replayedEnrol,
    minutes,
    axe_violations: axe ? axe.length : 0,
  };
});
