// Prints the browser's speaking-time budgets (web-client/js/state.js, budgetsLeft) for a
// state, roster and time given as a JSON file, for tests/budget_js.rs to compare with the
// server's arithmetic. Output: one JSON line, {delegation: milliseconds left}.
import { readFileSync } from "node:fs";
import { budgetsLeft } from "../web-client/js/state.js";

const input = JSON.parse(readFileSync(process.argv[2], "utf8"));
console.log(JSON.stringify(budgetsLeft(input.state, input.roster, input.now)));
