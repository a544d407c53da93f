// The sitting's state as the server's `snapshot` carries it, and `apply`, which folds one
// `event` into it: the browser's copy of `apply` in src/sitting/state.rs, kept in lockstep
// with it by tests/client_state.rs (the same events folded here give exactly the server's
// next snapshot). It folds facts the server has decided; it decides nothing, so no
// procedure rule lives here. Pure: no DOM, no clock, no network.

const byKey = (a, b) => (a < b ? -1 : a > b ? 1 : 0);

/// Inserts `value` into the sorted array `arr` (a BTreeSet on the server) unless present.
function insertSorted(arr, value) {
  let lo = 0;
  let hi = arr.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (arr[mid] < value) lo = mid + 1; else hi = mid;
  }
  if (arr[lo] !== value) arr.splice(lo, 0, value);
}

function removeRequest(s, request) {
  delete s.requests[request];
  s.queue = s.queue.filter((r) => r !== request);
}

const ACK_ORDER = { received: 0, read: 1 };

/// An empty state, before any snapshot.
export function emptyState() {
  return {
    sitting: null, title: "", rules: null, phase: "uncreated", present: {}, locations: {},
    agenda: [], current_item: null, requests: {}, queue: [], floor: null, speeches: [],
    votes: {}, open_vote: null, documents: {},
    last_ids: { item: 0, request: 0, vote: 0, document: 0 },
  };
}

/// Folds one event (the `event` field of an `event` message) into `s`, in place.
export function apply(s, e) {
  switch (e.type) {
    case "sitting_created":
      s.sitting = e.sitting;
      s.title = e.title;
      s.rules = e.rules;
      s.phase = "scheduled";
      for (const item of e.agenda) {
        s.agenda.push({ id: item.item, title: item.title });
        s.last_ids.item = Math.max(s.last_ids.item, item.item);
      }
      break;
    case "sitting_opened":
    case "sitting_resumed":
      s.phase = "open";
      break;
    case "sitting_suspended":
      s.phase = "suspended";
      break;
    case "sitting_closed":
      s.phase = "closed";
      break;
    case "checked_in":
      s.present[e.deputy] = e.by_clerk ?? null;
      if (e.location) s.locations[e.deputy] = e.location; else delete s.locations[e.deputy];
      break;
    case "checked_out":
      delete s.present[e.deputy];
      delete s.locations[e.deputy];
      break;
    case "agenda_item_added": {
      const at = Math.min(e.position, s.agenda.length);
      s.agenda.splice(at, 0, { id: e.item, title: e.title });
      s.last_ids.item = Math.max(s.last_ids.item, e.item);
      break;
    }
    case "agenda_reordered": {
      const items = new Map(s.agenda.map((i) => [i.id, i]));
      const agenda = [];
      for (const id of e.order) {
        if (items.has(id)) { agenda.push(items.get(id)); items.delete(id); }
      }
      // Anything the order left out keeps its place at the end, by id (a BTreeMap there).
      agenda.push(...[...items.values()].sort((a, b) => a.id - b.id));
      s.agenda = agenda;
      break;
    }
    case "current_item_set":
      s.current_item = e.item;
      break;
    case "floor_requested": {
      s.requests[e.request] = { deputy: e.deputy, kind: e.kind };
      const at = Math.min(e.position, s.queue.length);
      s.queue.splice(at, 0, e.request);
      s.last_ids.request = Math.max(s.last_ids.request, e.request);
      break;
    }
    case "floor_request_withdrawn":
      removeRequest(s, e.request);
      break;
    case "queue_reordered": {
      const rest = s.queue.filter((r) => !e.order.includes(r));
      s.queue = e.order.filter((r) => r in s.requests).concat(rest);
      break;
    }
    case "floor_granted":
      if (e.request != null) removeRequest(s, e.request);
      s.floor = {
        deputy: e.deputy, kind: e.kind, request: e.request ?? null,
        granted_at: e.granted_at, deadline: e.deadline,
      };
      break;
    case "floor_extended":
      if (s.floor) s.floor.deadline = e.deadline;
      break;
    case "floor_ended":
      if (s.floor) {
        const f = s.floor;
        s.floor = null;
        s.speeches.push({
          deputy: f.deputy, kind: f.kind, item: s.current_item, from: f.granted_at, to: e.at,
          ended: e.reason,
        });
      }
      break;
    case "vote_opened":
      s.votes[e.vote] = {
        item: e.item, question: e.question, method: e.method, rule: e.rule,
        opened_at: e.opened_at, deadline: e.deadline, allow_change: e.allow_change,
        step_up: !!e.step_up, rerun_of: e.rerun_of ?? null, status: { status: "open" }, ballots: {}, participants: [],
        // A secret vote's counts are known only with its result.
        tally: e.method === "secret" ? null : { yes: 0, no: 0, abstain: 0 },
      };
      s.open_vote = e.vote;
      s.last_ids.vote = Math.max(s.last_ids.vote, e.vote);
      break;
    case "ballot_cast": {
      const v = s.votes[e.vote];
      if (!v) break;
      const old = v.ballots[e.deputy];
      let changes = 0;
      if (old) {
        v.tally[old.choice] = Math.max(0, v.tally[old.choice] - 1);
        changes = old.changes + 1;
      }
      v.tally[e.choice] += 1;
      insertSorted(v.participants, e.deputy);
      v.ballots[e.deputy] = { choice: e.choice, on_behalf: e.on_behalf ?? null, changes };
      break;
    }
    case "secret_ballot_taken": {
      const v = s.votes[e.vote];
      if (v) insertSorted(v.participants, e.deputy);
      break;
    }
    case "vote_closed": {
      const v = s.votes[e.vote];
      if (v) {
        v.status = { status: "closed", result: e.result };
        if (v.method === "secret") v.tally = { ...e.result.tally };
      }
      if (s.open_vote === e.vote) s.open_vote = null;
      break;
    }
    case "vote_voided": {
      const v = s.votes[e.vote];
      if (v) {
        const result = v.status.status === "closed" ? v.status.result : null;
        v.status = { status: "voided", reason: e.reason, result };
      }
      if (s.open_vote === e.vote) s.open_vote = null;
      break;
    }
    case "document_published": {
      let doc = s.documents[e.document];
      if (!doc) {
        doc = { item: e.item, access: e.access, versions: [], acks: {} };
        s.documents[e.document] = doc;
      }
      doc.access = e.access;
      if (e.version === doc.versions.length + 1) {
        const v = { title: e.title, media_type: e.media_type, size: e.size, sha256: e.sha256 };
        if (e.file_name != null) v.file_name = e.file_name;
        doc.versions.push(v);
      }
      s.last_ids.document = Math.max(s.last_ids.document, e.document);
      break;
    }
    case "document_acknowledged": {
      const doc = s.documents[e.document];
      if (!doc) break;
      const mine = (doc.acks[e.deputy] ??= {});
      const had = mine[e.version];
      if (had === undefined || ACK_ORDER[e.ack] > ACK_ORDER[had]) mine[e.version] = e.ack;
      break;
    }
    case "withheld":
      // An event about a document this account may not read: it keeps the numbering, and
      // there is nothing in it to apply.
      break;
    default:
      // An event type this page does not know: the state may now lag the server's, so the
      // caller asks for a fresh snapshot.
      return false;
  }
  return true;
}

/// The pending requests in queue order, each with its id and its place from 1.
export function queueOf(s) {
  return s.queue.map((id, i) => ({ id, position: i + 1, ...s.requests[id] }));
}

/// The vote accepting ballots, with its id, or null.
export function openVote(s) {
  return s.open_vote == null ? null : { id: s.open_vote, ...s.votes[s.open_vote] };
}

/// The most recent vote (open, closed or voided), with its id, or null.
export function latestVote(s) {
  const ids = Object.keys(s.votes).map(Number).sort((a, b) => a - b);
  if (!ids.length) return null;
  const id = ids[ids.length - 1];
  return { id, ...s.votes[id] };
}

/// Sorted keys of an object (for stable rendering).
export function sortedKeys(o) {
  return Object.keys(o).sort(byKey);
}

/// The total membership: every actor of the roster who is a deputy (Roster::members).
export function membersOf(roster) {
  return Object.values(roster.actors).filter((a) => a.roles.includes("deputy")).length;
}

/// Each delegation's speaking time left on the current item, in milliseconds at `now`, when
/// the rules set a budget: the same arithmetic as src/sitting/budget.rs (points of order do
/// not count; the speech going on counts up to now). `{}` without a budget or an item.
export function budgetsLeft(s, roster, now) {
  const budget = s.rules && s.rules.delegation_budget_secs;
  const item = s.current_item;
  if (!budget || item == null) return {};
  const delegationOf = (d) => (roster.actors[d] || {}).delegation;
  const left = {};
  const spend = (deputy, ms) => {
    const d = delegationOf(deputy);
    if (!d) return;
    left[d] = (left[d] ?? budget * 1000) - Math.max(0, ms);
  };
  for (const sp of s.speeches) {
    if (sp.item === item && sp.kind !== "point_of_order") spend(sp.deputy, sp.to - sp.from);
  }
  if (s.floor && s.floor.kind !== "point_of_order") spend(s.floor.deputy, now - s.floor.granted_at);
  for (const r of queueOf(s)) {
    const d = delegationOf(r.deputy);
    if (d && !(d in left)) left[d] = budget * 1000;
  }
  return left;
}

/// Whether the quorum is met: the same arithmetic as Quorum::met in src/sitting/rules.rs.
export function quorumMet(s, members) {
  const q = s.rules && s.rules.quorum;
  if (!q) return false;
  const present = Object.keys(s.present).length;
  const lhs = present * q.denominator;
  const rhs = members * q.numerator;
  return q.strict ? lhs > rhs : lhs >= rhs;
}
