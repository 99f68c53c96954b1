// Delivery status, both ways. Out: `received` frames saying how far of each conversation
// this device holds, at most one per conversation per second however many frames arrive,
// and a few a second in all.
// In: the others' delivered and read marks (GET receipts when a conversation opens, then
// `delivered` and `read` events), from which my messages get their ticks.
import * as api from "./api.js";
import { store } from "./store.js";

// One round of `received` frames a second: a busy group sends frames many times a second,
// and the server only keeps the highest mark anyway.
const RECEIVED_EVERY_MS = 1_000;
// Frames per round: the server allows a user 20 frames a second (WS_RATE) and closes a
// socket that keeps passing it; a list of a hundred conversations is told over seconds.
const RECEIVED_PER_ROUND = 5;

let socket = null;
const receivedSent = new Map(); // conversation id → the seq last sent in a received frame
const due = new Set(); // conversations whose mark is to be sent, oldest first
let round = null;

export function useSocket(chatSocket) {
  socket = chatSocket;
}

// This device now holds more of the conversation: say so, soon.
export function noteHeld(id) {
  if (heldThrough(id) <= (receivedSent.get(id) ?? 0)) return;
  due.add(id);
  round ??= setTimeout(sendRound, RECEIVED_EVERY_MS);
}

function sendRound() {
  round = null;
  for (const id of [...due].slice(0, RECEIVED_PER_ROUND)) {
    due.delete(id);
    flush(id);
  }
  if (due.size) round = setTimeout(sendRound, RECEIVED_EVERY_MS);
}

// The last seq held without a hole; for a conversation not opened yet, what the list and
// the live frames since told this device.
function heldThrough(id) {
  const thread = store.threads.get(id);
  if (thread?.loaded) return thread.heldThrough;
  return store.conversations.get(id)?.last_seq ?? 0;
}

function flush(id) {
  const seq = heldThrough(id);
  if (!seq || (receivedSent.get(id) ?? 0) >= seq) return;
  if (socket?.send({ event: "received", conversation_id: id, seq })) receivedSent.set(id, seq);
}

function raise(marks, id, userId, seq) {
  if (!marks.has(id)) marks.set(id, new Map());
  const byUser = marks.get(id);
  if ((byUser.get(userId) ?? 0) >= seq) return false;
  byUser.set(userId, seq);
  return true;
}

// Every member's marks, as the server holds them now.
export async function loadReceipts(id) {
  const { receipts } = await api.receipts(id);
  let moved = false;
  for (const r of receipts) {
    if (r.user_id === store.me.id) continue;
    moved = raise(store.deliveredTo, id, r.user_id, r.delivered_seq) || moved;
    moved = raise(store.readBy, id, r.user_id, r.read_seq) || moved;
  }
  if (moved) store.emit("thread", id);
}

export function deliveredSeen(frame) {
  if (frame.user_id === store.me.id) return;
  if (raise(store.deliveredTo, frame.conversation_id, frame.user_id, frame.seq)) store.emit("thread", frame.conversation_id);
}

export function readSeen(frame) {
  if (raise(store.readBy, frame.conversation_id, frame.user_id, frame.seq)) store.emit("thread", frame.conversation_id);
}

// "sent", "delivered" (every other member's device has it) or "read" (every other member
// read it), for a message of mine the server acknowledged. Who joined after it was sent
// is not waited for.
export function status(conversation, message) {
  const others = conversation.participants.filter((p) => p.id !== store.me.id && (p.joined_at ?? 0) <= message.sent_at);
  if (!others.length) return "sent";
  const read = store.readBy.get(conversation.id);
  const delivered = store.deliveredTo.get(conversation.id);
  const readAll = others.every((p) => (read?.get(p.id) ?? 0) >= message.seq);
  if (readAll) return "read";
  const has = (p) => Math.max(delivered?.get(p.id) ?? 0, read?.get(p.id) ?? 0) >= message.seq;
  return others.every(has) ? "delivered" : "sent";
}

export function forget() {
  clearTimeout(round);
  round = null;
  due.clear();
  receivedSent.clear();
}
