// Reconnecting without holes. The socket opens with `?resume=1` and its first frame says,
// per conversation whose messages the page holds, the last seq held; the server replays
// what was missed (those frames are handled as live ones) and ends with `resumed`. What it
// could not replay (`recovered: false`) is read again from history (sync.refetch), and if
// no `resumed` comes at all, everything is, as before resume existed. A conversation the
// server no longer shows me (`not_found`: deleted, or I left or was removed meanwhile) is
// dropped, with a notice if it is open.
import * as groups from "./groups.js";
import { store } from "./store.js";
import * as sync from "./sync.js";

// A replay is a few hundred frames at most; past this the answer is not coming.
const RESUMED_WITHIN_MS = 8_000;
// The refusals of a resume frame (docs/websocket.md): the after_seq catch-up runs instead.
const REFUSALS = new Set(["not_negotiated", "too_many_conversations", "invalid_field", "invalid_frame"]);

let waiting = null; // {timer, onResumed, onFailed}: a resume sent, its answer not yet here

// Send the resume frame, the socket's first. `onResumed` runs once the missed frames are
// in (replayed, or fetched from history); `onFailed` when the resume was refused or not
// answered, to catch up without it.
export function begin(socket, { onResumed, onFailed }) {
  cancel();
  const positions = {};
  for (const [id, thread] of store.threads) if (thread.loaded) positions[id] = thread.heldThrough;
  if (!socket.send({ event: "resume", positions })) return;
  waiting = { onResumed, onFailed, timer: setTimeout(fallBack, RESUMED_WITHIN_MS) };
}

export function resumed(frame) {
  if (!waiting) return;
  const { onResumed, onFailed } = settle();
  // A recovered conversation got every frame after its position: any hole is filled.
  for (const c of frame.conversations) {
    const thread = store.threads.get(c.conversation_id);
    if (c.recovered && thread && !sync.isCatchingUp(c.conversation_id)) thread.holeAfter = null;
  }
  groups.notFound(frame.not_found ?? []);
  const unrecovered = frame.conversations.filter((c) => !c.recovered);
  Promise.all(unrecovered.map((c) => sync.refetch(c.conversation_id, c.from_seq - 1, c.to_seq))).then(onResumed, onFailed);
}

// An error frame: true when it refused the resume (and the fallback now runs).
export function refused(frame) {
  if (!waiting || frame.ref || !REFUSALS.has(frame.code)) return false;
  fallBack();
  return true;
}

function fallBack() {
  if (waiting) settle().onFailed();
}

function settle() {
  const settled = waiting;
  clearTimeout(settled.timer);
  waiting = null;
  return settled;
}

export function cancel() {
  if (waiting) clearTimeout(waiting.timer);
  waiting = null;
}
