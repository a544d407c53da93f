#!/usr/bin/env python3
"""Interop check with a WebRTC stack dienhong did not write (aiortc).

Publishes a synthetic camera (VP8, a moving colour pattern) and a tone (Opus) over WHIP,
pulls them back over WHEP, decodes what arrives, and prints one JSON line with what was
decoded. Exits 0 when enough video frames of the published size and audio frames were
decoded, 1 otherwise. Used by tests/media.rs; runs only against a server on loopback.
"""

import argparse
import asyncio
import fractions
import json
import math
import sys
import time
import urllib.error
import urllib.request

import aioice.ice
import numpy
from aiortc import (
    MediaStreamTrack,
    RTCPeerConnection,
    RTCSessionDescription,
)
from av import AudioFrame, VideoFrame

# Gather only the loopback address: the server under test listens there, and this check
# must not send traffic to any other interface.
aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]

WIDTH, HEIGHT = 320, 240


class Pattern(MediaStreamTrack):
    """A camera: 30 frames/s of a colour bar that moves, so every frame differs."""

    kind = "video"

    def __init__(self):
        super().__init__()
        self.n = 0
        self.start = None

    async def recv(self):
        if self.start is None:
            self.start = time.time()
        self.n += 1
        await asyncio.sleep(max(0, self.start + self.n / 30 - time.time()))
        img = numpy.zeros((HEIGHT, WIDTH, 3), numpy.uint8)
        x = (self.n * 4) % WIDTH
        img[:, :, 1] = 160
        img[:, x : x + 40, 0] = 255
        frame = VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts = self.n * 3000
        frame.time_base = fractions.Fraction(1, 90000)
        return frame


class Tone(MediaStreamTrack):
    """A microphone: a 440 Hz tone in 20 ms frames."""

    kind = "audio"

    def __init__(self):
        super().__init__()
        self.n = 0
        self.start = None

    async def recv(self):
        if self.start is None:
            self.start = time.time()
        self.n += 1
        await asyncio.sleep(max(0, self.start + self.n * 0.02 - time.time()))
        t = (numpy.arange(960) + (self.n - 1) * 960) / 48000
        samples = (numpy.sin(2 * math.pi * 440 * t) * 8000).astype(numpy.int16)
        frame = AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = 48000
        frame.pts = (self.n - 1) * 960
        frame.time_base = fractions.Fraction(1, 48000)
        return frame


def http(method, url, token, body=None, content_type=None):
    req = urllib.request.Request(url, data=body, method=method)
    req.add_header("Authorization", f"Bearer {token}")
    if content_type:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read().decode()


async def negotiate(pc, base, path, token):
    await pc.setLocalDescription(await pc.createOffer())
    status, headers, answer = await asyncio.to_thread(
        http,
        "POST",
        base + path,
        token,
        pc.localDescription.sdp.encode(),
        "application/sdp",
    )
    if status != 201:
        raise SystemExit(f"{path}: expected 201, got {status}: {answer}")
    location = headers.get("location")
    if not location or headers.get("content-type", "").split(";")[0] != "application/sdp":
        raise SystemExit(f"{path}: missing Location or wrong Content-Type: {headers}")
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    return location


async def wait_connected(pc, what, timeout=15):
    deadline = time.time() + timeout
    while pc.connectionState != "connected":
        if time.time() > deadline or pc.connectionState == "failed":
            raise SystemExit(f"{what}: not connected ({pc.connectionState})")
        await asyncio.sleep(0.05)


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--publish-token", required=True)
    ap.add_argument("--pull-token", required=True)
    ap.add_argument("--seconds", type=float, default=5)
    args = ap.parse_args()

    publisher = RTCPeerConnection()
    publisher.addTrack(Pattern())
    publisher.addTrack(Tone())
    whip = await negotiate(publisher, args.base, "/whip", args.publish_token)
    await wait_connected(publisher, "WHIP publisher")

    viewer = RTCPeerConnection()
    viewer.addTransceiver("video", direction="recvonly")
    viewer.addTransceiver("audio", direction="recvonly")
    decoded = {"video_frames": 0, "audio_frames": 0, "sizes": set(), "moving": set()}

    async def consume(track):
        while True:
            try:
                frame = await track.recv()
            except Exception:
                return
            if track.kind == "video":
                decoded["video_frames"] += 1
                decoded["sizes"].add((frame.width, frame.height))
                # Where the bright bar is: it must move from frame to frame.
                img = frame.to_ndarray(format="rgb24")
                decoded["moving"].add(int(numpy.argmax(img[HEIGHT // 2, :, 0])) // 8)
            else:
                decoded["audio_frames"] += 1

    tasks = []
    viewer.on("track", lambda t: tasks.append(asyncio.ensure_future(consume(t))))
    whep = await negotiate(viewer, args.base, "/whep", args.pull_token)
    await wait_connected(viewer, "WHEP viewer")
    await asyncio.sleep(args.seconds)

    ended = []
    for location, token in ((whep, args.pull_token), (whip, args.publish_token)):
        status, _, _ = await asyncio.to_thread(http, "DELETE", args.base + location, token)
        ended.append(status)
    await viewer.close()
    await publisher.close()
    for t in tasks:
        t.cancel()

    result = {
        "video_frames": decoded["video_frames"],
        "audio_frames": decoded["audio_frames"],
        "sizes": sorted(decoded["sizes"]),
        "distinct_bar_positions": len(decoded["moving"]),
        "delete_status": ended,
    }
    print(json.dumps(result))
    ok = (
        result["video_frames"] >= 30
        and result["audio_frames"] >= 50
        and result["sizes"] == [(WIDTH, HEIGHT)]
        and result["distinct_bar_positions"] >= 5
        and ended == [200, 200]
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
