// Folds recorded events with the browser's reducer (web-client/js/state.js) and prints the
// state at each requested sequence number, for tests/client_state.rs to compare with the
// server's snapshots. Input (a JSON file): {initial: {seq, state}, events: [event messages],
// at: [seq, …]}. Output: one JSON line, {"<seq>": state, …}.
import { readFileSync } from "node:fs";
import { apply } from "../web-client/js/state.js";

const input = JSON.parse(readFileSync(process.argv[2], "utf8"));
const state = structuredClone(input.initial.state);
let seq = input.initial.seq;
const wanted = new Set(input.at);
const out = {};
for (const msg of input.events) {
  if (msg.seq <= seq) continue;
  if (msg.seq !== seq + 1) throw new Error(`gap: ${seq} then ${msg.seq}`);
  if (!apply(state, msg.event)) throw new Error(`unknown event ${msg.event.type}`);
  seq = msg.seq;
  if (wanted.has(seq)) out[seq] = structuredClone(state);
}
console.log(JSON.stringify(out));
