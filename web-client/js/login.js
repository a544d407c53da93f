// The log-in page: every role logs in here and lands on its own page (or goes back to the
// page that sent it here).
import { login, landingFor, savedAuth } from "./core.js";
import { t, errorText, onLang } from "./i18n.js";
import { mountHeader } from "./ui.js";

mountHeader("appName", null, null);
const params = new URLSearchParams(location.search);
const error = document.getElementById("login-error");
let reasonKey = params.get("reason") === "expired" ? "loginExpired" : null;
const showReason = () => { if (reasonKey) error.textContent = t(reasonKey); };
showReason();
onLang(showReason);

function destination(roles) {
  const next = params.get("next");
  // Back to the page that sent the user here (with its query), if it is one of ours.
  return next && /^\/[a-z]+(\?[\w=&%.-]*)?$/.test(next) ? next : landingFor(roles);
}

const existing = savedAuth();
if (existing && existing.roles && existing.roles.length && !reasonKey) location.replace(destination(existing.roles));

document.getElementById("login").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const form = ev.target;
  const f = new FormData(form);
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    const auth = await login(String(f.get("code")), String(f.get("password")));
    location.assign(destination(auth.roles));
  } catch (e) {
    reasonKey = { bad_credentials: "loginFailed", too_many_attempts: "loginThrottled" }[e.code] || "loginUnavailable";
    showReason();
    error.textContent = reasonKey === "loginUnavailable" ? errorText(e.code) : t(reasonKey);
    form.querySelector("[name=password]").select();
  } finally {
    button.disabled = false;
  }
});
