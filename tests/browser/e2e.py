#!/usr/bin/env python3
"""End-to-end check in a real browser (Debian's Chromium, headless, fake camera and
microphone): the room app (/room) publishes through the SFU over WHIP as the chamber, the
hall display (/display) pulls the programme over WHEP, and the display's own WebRTC stats
must show decoded video frames.

Starts the dienhong binary (demo sitting, SQLite in a temporary directory) and Chromium,
drives Chromium over the DevTools protocol, prints one JSON line, exits 0 on success. Run it
inside a network namespace of its own with only loopback (tests/browser.rs does), so
neither the browser nor the SFU can send anything beyond this machine.
"""

import argparse
import asyncio
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

import websockets

PORT = 18080
BASE = f"http://127.0.0.1:{PORT}"


def login(code):
    req = urllib.request.Request(
        BASE + "/api/login",
        data=json.dumps({"code": code, "password": "demo"}).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)["token"]


def wait_healthy(server, deadline):
    while time.time() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode}")
        try:
            with urllib.request.urlopen(BASE + "/healthz", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the server did not come up")


class Cdp:
    def __init__(self, ws):
        self.ws = ws
        self.ids = itertools.count(1)

    async def call(self, method, params=None, session=None):
        msg_id = next(self.ids)
        msg = {"id": msg_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        await self.ws.send(json.dumps(msg))
        while True:
            reply = json.loads(await self.ws.recv())
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    async def open(self, url):
        target = await self.call("Target.createTarget", {"url": url})
        attached = await self.call(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )
        return attached["sessionId"]

    async def eval(self, session, expression):
        r = await self.call(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": True, "returnByValue": True},
            session,
        )
        return r.get("result", {}).get("value")


async def drive(port_file, tokens, seconds, min_frames):
    deadline = time.time() + 20
    while not os.path.exists(port_file) and time.time() < deadline:
        await asyncio.sleep(0.1)
    with open(port_file) as f:
        port, path = f.read().split()[:2]
    async with websockets.connect(f"ws://127.0.0.1:{port}{path}", max_size=None) as ws:
        cdp = Cdp(ws)
        room = await cdp.open(f"{BASE}/room?autostart=1#token={tokens['CHAMBER']}")
        # The display logs in through its form, as a person would.
        display = await cdp.open(f"{BASE}/display")
        deadline = time.time() + 10
        while not await cdp.eval(display, "!!document.querySelector('#login:not([hidden])')"):
            if time.time() > deadline:
                raise SystemExit("the display shows no login form")
            await asyncio.sleep(0.2)
        await cdp.eval(
            display,
            "document.querySelector('#login [name=code]').value = 'OBSERVER';"
            "document.querySelector('#login [name=password]').value = 'demo';"
            "document.getElementById('login').requestSubmit(); true",
        )
        frames, room_state, display_state = 0, None, None
        end = time.time() + seconds
        while time.time() < end:
            await asyncio.sleep(0.5)
            room_state = await cdp.eval(room, "window.dienhongMedia && window.dienhongMedia.state()")
            display_state = await cdp.eval(
                display, "window.dienhongMedia && window.dienhongMedia.state()"
            )
            frames = await cdp.eval(
                display, "window.dienhongMedia ? window.dienhongMedia.framesDecoded() : 0"
            ) or 0
            if frames >= min_frames:
                break
        # What the display decoded last: the layer it receives.
        size = await cdp.eval(
            display,
            "(async () => { let r = null; (await window.dienhongMedia.stats()).forEach((s) => {"
            " if (s.type === 'inbound-rtp' && s.kind === 'video') r = [s.frameWidth, s.frameHeight]; });"
            " return r; })()",
        )
        return {"frames_decoded": frames, "room_state": room_state, "display_state": display_state,
                "frame_size": size}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--seconds", type=float, default=25)
    ap.add_argument("--min-frames", type=int, default=30)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="dienhong-browser-")
    env = dict(os.environ, DIENHONG__MEDIA__UDP_PORT_MIN="0", DIENHONG__MEDIA__UDP_PORT_MAX="0",
               RUST_LOG="warn,rtc_dtls=error")
    log = open(os.path.join(tmp, "server.log"), "w")
    server = subprocess.Popen(
        [args.bin, "demo", "--listen", f"127.0.0.1:{PORT}", "--database", f"sqlite:{tmp}/db"],
        env=env, stdout=log, stderr=log,
    )
    browser = None
    try:
        wait_healthy(server, time.time() + 60)
        tokens = {"CHAMBER": login("CHAMBER")}
        profile = os.path.join(tmp, "profile")
        browser = subprocess.Popen(
            [
                shutil.which("chromium") or "/usr/bin/chromium",
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                "--allow-loopback-in-peer-connection", "--autoplay-policy=no-user-gesture-required",
                "--remote-debugging-port=0", f"--user-data-dir={profile}", "about:blank",
            ],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        result = asyncio.run(
            drive(os.path.join(profile, "DevToolsActivePort"), tokens, args.seconds, args.min_frames)
        )
    finally:
        if browser:
            browser.terminate()
            try:
                browser.wait(10)
            except subprocess.TimeoutExpired:
                browser.kill()
        server.terminate()
        server.wait(20)
        log.close()
    print(json.dumps(result))
    ok = result["frames_decoded"] > 0 and result["room_state"] == "live"
    if not ok:
        with open(os.path.join(tmp, "server.log")) as f:
            sys.stderr.write(f.read()[-4000:])
    shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
