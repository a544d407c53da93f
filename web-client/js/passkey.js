// Passkeys (WebAuthn) on the pages: register one for the account, and confirm a ballot with
// it when its vote asks for that (a step-up). The server speaks WebAuthn's JSON form, binary
// fields in base64url; the browser's API takes and gives ArrayBuffers, so both directions
// are converted here. A confirmation is asked for one ballot (vote, choice and deputy) and
// is good once.
import { ServerError } from "./core.js";
import { t, errorText } from "./i18n.js";
import { h, fill } from "./ui.js";

/// Whether this browser can use passkeys at all (a secure context with WebAuthn).
export const supported = () => typeof window.PublicKeyCredential === "function" && !!navigator.credentials;

function fromB64u(s) {
  const b64 = s.replace(/-/g, "+").replace(/_/g, "/");
  const bin = atob(b64 + "===".slice((b64.length + 3) % 4));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

function toB64u(buf) {
  const bytes = new Uint8Array(buf);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

const withIds = (list) => (list || []).map((c) => ({ ...c, id: fromB64u(c.id) }));

async function api(auth, path, body) {
  let r;
  try {
    r = await fetch(path, {
      method: body === undefined ? "GET" : "POST",
      headers: { authorization: `Bearer ${auth.token}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (_) {
    throw new ServerError("unavailable");
  }
  let json = null;
  try { json = await r.json(); } catch (_) { /* not JSON */ }
  if (!r.ok) throw new ServerError((json && json.code) || "unavailable", json && json.message);
  return json;
}

/// The account's passkeys: `[{id, created_at}]`.
export async function listPasskeys(auth) {
  return (await api(auth, "/api/passkeys")).passkeys;
}

/// Registers a passkey of this device for the account; resolves with `{id, created_at}`.
/// An account that has a passkey confirms with it first (`stepUp`, or asked for here): a
/// stolen log-in alone cannot add one.
export async function registerPasskey(auth, stepUp) {
  let started;
  try {
    started = await api(auth, "/api/passkeys/options", stepUp ? { step_up: stepUp } : {});
  } catch (e) {
    if (e.code !== "step_up_required" || stepUp) throw e;
    started = await api(auth, "/api/passkeys/options", { step_up: await enrolProof(auth) });
  }
  const { registration, options } = started;
  const pk = options.publicKey;
  const publicKey = {
    ...pk,
    challenge: fromB64u(pk.challenge),
    user: { ...pk.user, id: fromB64u(pk.user.id) },
    excludeCredentials: withIds(pk.excludeCredentials),
  };
  let made;
  try {
    made = await navigator.credentials.create({ publicKey });
  } catch (e) {
    throw new ServerError("passkey_cancelled", e.message);
  }
  const credential = {
    id: made.id,
    rawId: toB64u(made.rawId),
    type: made.type,
    response: {
      attestationObject: toB64u(made.response.attestationObject),
      clientDataJSON: toB64u(made.response.clientDataJSON),
    },
    extensions: {},
  };
  return api(auth, "/api/passkeys", { registration, credential });
}

/// Confirms with the account's passkey that it may add another one.
export function enrolProof(auth) {
  return answer(auth, { enrol: true });
}

/// Confirms one ballot with the account's passkey: the `step_up` a ballot command carries.
export function confirmBallot(auth, { sitting, vote, choice, deputy }) {
  return answer(auth, { sitting, vote, choice, deputy });
}

/// Asks for a step-up challenge for `purpose` and has the authenticator answer it.
async function answer(auth, purpose) {
  const { challenge, options } = await api(auth, "/api/step-up", purpose);
  const pk = options.publicKey;
  const publicKey = { ...pk, challenge: fromB64u(pk.challenge), allowCredentials: withIds(pk.allowCredentials) };
  let got;
  try {
    got = await navigator.credentials.get({ publicKey });
  } catch (e) {
    throw new ServerError("passkey_cancelled", e.message);
  }
  const r = got.response;
  return {
    challenge,
    credential: {
      id: got.id,
      rawId: toB64u(got.rawId),
      type: got.type,
      response: {
        authenticatorData: toB64u(r.authenticatorData),
        clientDataJSON: toB64u(r.clientDataJSON),
        signature: toB64u(r.signature),
        userHandle: r.userHandle ? toB64u(r.userHandle) : null,
      },
      extensions: {},
    },
  };
}

/// Sends a command; a ballot on a vote that asks for a passkey is confirmed with one first
/// (the deputy's own, or the clerk's for an entry on a deputy's behalf).
export async function sendCommand(client, command) {
  const ballot = command.command === "cast_ballot" || command.command === "record_ballot";
  const vote = ballot ? client.state.votes[command.vote] : null;
  if (!vote || !vote.step_up) return client.command(command);
  const stepUp = await confirmBallot(client.auth, {
    sitting: client.sitting,
    vote: command.vote,
    choice: command.choice,
    deputy: command.deputy,
  });
  return client.command(command, stepUp);
}

/// The passkey card of a page: what the account has registered, and a button to register
/// this device. `root` is an empty `<section class="card">`.
export function mountPasskeyCard(root, auth, notice) {
  let count = null;
  let busy = false;
  const render = () => {
    const status = !supported() ? t("passkeyUnsupported")
      : count == null ? t("loading")
        : count === 0 ? t("passkeyNone") : `${t("passkeyCount")}: ${count}`;
    const button = h("button", {
      type: "button", class: "secondary", id: "passkey-register",
      disabled: busy || !supported(),
      onclick: async () => {
        busy = true;
        render();
        try {
          await registerPasskey(auth);
          count = (count || 0) + 1;
          notice(t("passkeyRegistered"));
        } catch (e) {
          notice(errorText(e.code), "error");
        } finally {
          busy = false;
          render();
        }
      },
    }, t("registerPasskey"));
    fill(root,
      h("h2", { id: "passkey-title" }, t("passkeys")),
      h("p", { class: "muted" }, t("passkeyHelp")),
      h("p", { id: "passkey-status", role: "status", dataset: { count: count == null ? "" : String(count) } }, status),
      button);
  };
  root.setAttribute("aria-labelledby", "passkey-title");
  render();
  if (supported()) {
    listPasskeys(auth).then((list) => { count = list.length; render(); }).catch(() => { count = null; render(); });
  }
  return render;
}
