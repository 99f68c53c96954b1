// Keeping the store in step with the server: conversation list, history pages, the
// catch-up after a gap (or a reconnect the server could not replay: the held messages
// read again, for the edits and deletes of the gap), sending with acknowledgement, edits
// and deletes, read marks.
import * as api from "./api.js";
import * as groups from "./groups.js";
import { isImage } from "./media.js";
import * as receipts from "./receipts.js";
import { store } from "./store.js";

export const PAGE_SIZE = 30;
const CATCH_UP_PAGE = 100;
// A refetch after missed entries reads at most this many pages (of CATCH_UP_PAGE) back.
const REFETCH_PAGES_MAX = 5;
const TYPING_SHOWN_MS = 5_000;
// A notice keeps "typing…" lit on the others' screens for TYPING_SHOWN_MS: one every 3 s
// while typing is enough, instead of a frame per keystroke.
const TYPING_EVERY_MS = 3_000;

let socket = null;
const readSent = new Map(); // conversation id → the seq last sent in a read frame
const lastTypingSent = new Map();
const catchingUp = new Map(); // conversation id → the running catch-up

export function useSocket(chatSocket) {
  socket = chatSocket;
}

export async function refreshConversations() {
  store.setConversations(await api.conversations());
  // The list brings each conversation's newest message: this device has it now.
  for (const id of store.conversations.keys()) receipts.noteHeld(id);
}

export async function loadNewest(id) {
  const thread = store.thread(id);
  const page = await api.messages(id, { limit: PAGE_SIZE });
  for (const m of page.messages) thread.add(m);
  // Newest first: its cursor walks to older messages. Messages that arrived live while
  // the page was on its way are kept; the page only adds.
  if (!thread.loaded) {
    thread.olderCursor = page.nextCursor;
    thread.hasOlder = page.hasMore;
  }
  thread.loaded = true;
  receipts.noteHeld(id);
  store.emit("thread", id);
}

export async function loadOlder(id) {
  const thread = store.thread(id);
  if (!thread.hasOlder || thread.loadingOlder) return false;
  thread.loadingOlder = true;
  try {
    const page = await api.messages(id, { cursor: thread.olderCursor, limit: PAGE_SIZE });
    for (const m of page.messages) thread.add(m);
    thread.olderCursor = page.nextCursor;
    thread.hasOlder = page.hasMore;
  } finally {
    thread.loadingOlder = false;
  }
  store.emit("thread", id);
  return true;
}

// The messages after the newest held, oldest first, page by page: what a look at a
// conversation already loaded asks, when nothing says entries were missed.
export function catchUp(id) {
  return queued(id, async (thread) => {
    let cursor = null;
    let after = thread.lastSeq;
    let added = 0;
    do {
      const page = await api.messages(id, { cursor, afterSeq: after, limit: CATCH_UP_PAGE });
      for (const m of page.messages) if (thread.add(m)) added += 1;
      cursor = page.nextCursor;
      after = undefined;
    } while (cursor);
    return added;
  });
}

// Entries of the log after `afterSeq` were missed (a resume the server could not replay,
// frames lost on the way). They may be edits and deletes of messages held from before
// it, which pages `after_seq` never show: the held messages are read again, newest
// first, each as it reads now, down to the oldest held. Past REFETCH_PAGES_MAX pages the
// thread keeps what was read and drops the rest (not known to be current, and a hole
// may lie between); scrolling up reads it again. `through`: a seq the pages are known
// to reflect (every entry up to it came before they were read).
export function refetch(id, afterSeq, through = 0) {
  const thread = store.threads.get(id);
  if (!thread) return Promise.resolve();
  // From now until it is filled, the thread claims to hold no further than the hole.
  thread.holeAfter = Math.min(thread.holeAfter ?? afterSeq, afterSeq);
  return queued(id, async (held) => {
    const floor = held.ordered.length ? held.firstSeq : null; // null: nothing held
    let cursor = null;
    let oldest = Infinity;
    let changed = 0;
    for (let pages = 0; pages < REFETCH_PAGES_MAX; pages++) {
      const page = await api.messages(id, { cursor, limit: CATCH_UP_PAGE });
      for (const m of page.messages) {
        const before = held.byId.get(m.id);
        held.add(m);
        if (held.byId.get(m.id) !== before) changed += 1;
      }
      oldest = page.messages.at(-1)?.seq ?? 0;
      cursor = page.nextCursor;
      if (!cursor || floor === null || oldest <= floor) break;
    }
    if (cursor && (floor === null || oldest > floor)) {
      held.dropBefore(oldest);
      held.olderCursor = cursor;
      held.hasOlder = true;
      changed += 1;
    }
    held.position = Math.max(held.position, through);
    return changed;
  });
}

// One catch-up per conversation at a time; the next waits for the one running. The
// thread's hole is closed by the last one queued, and a conversation lost meanwhile is
// left alone.
function queued(id, task) {
  const previous = catchingUp.get(id) ?? Promise.resolve();
  const run = previous
    .catch(() => {})
    .then(async () => {
      const thread = store.threads.get(id);
      if (!thread || !store.conversations.has(id)) return;
      const changed = await task(thread);
      if (catchingUp.get(id) === run) thread.holeAfter = null;
      receipts.noteHeld(id);
      const conversation = store.conversations.get(id);
      if (conversation && thread.ordered.length) store.noteMessage(conversation, thread.ordered.at(-1));
      if (changed) store.emit("thread", id);
      store.emit("conversations");
    })
    .finally(() => {
      if (catchingUp.get(id) === run) catchingUp.delete(id);
    });
  catchingUp.set(id, run);
  return run;
}

export function isCatchingUp(id) {
  return catchingUp.has(id);
}

// When a resume was refused or not answered: the list (a conversation may have started
// meanwhile) and every conversation whose messages the page holds, read again from
// what it held whole.
export async function catchUpAll() {
  await refreshConversations();
  const loaded = [...store.threads.entries()].filter(([, t]) => t.loaded);
  await Promise.all(loaded.map(([id, t]) => refetch(id, t.heldThrough)));
  resendPending();
}

function newClientMsgId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  // randomUUID exists only in secure contexts (https, localhost); getRandomValues everywhere.
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

// `replyTo`: the held message this one answers.
// `media`: an upload's answer (media.js), sent as an image (a raster image) or a file
// message with `content` its caption, maybe empty.
export function send(id, content, replyTo = null, media = null) {
  const text = content.trim();
  if (!text && !media) return;
  const pending = {
    client_msg_id: newClientMsgId(),
    conversation_id: id,
    sender_id: store.me.id,
    sender_username: store.me.username,
    content: text,
    type: media ? (isImage(media) ? "image" : "file") : "text",
    sent_at: Date.now(),
    state: "pending",
  };
  if (media) pending.media = media;
  if (replyTo) {
    pending.reply_to = {
      id: replyTo.id,
      sender_id: replyTo.sender_id,
      sender_username: replyTo.sender_username,
      content: replyTo.content,
      deleted: Boolean(replyTo.deleted),
    };
  }
  store.thread(id).pending.set(pending.client_msg_id, pending);
  // The next message's first keystroke is news again.
  lastTypingSent.delete(id);
  store.emit("thread", id);
  transmit(pending);
}

function transmit(pending) {
  pending.state = "pending";
  const frame = {
    event: "message",
    conversation_id: pending.conversation_id,
    content: pending.content,
    client_msg_id: pending.client_msg_id,
  };
  if (pending.reply_to) frame.reply_to = pending.reply_to.id;
  if (pending.media) Object.assign(frame, { type: pending.type, media_id: pending.media.id });
  socket?.send(frame);
  // Not sent now (no connection): resendPending() sends it once the socket is back. The
  // server keeps one message per client_msg_id, so sending twice delivers once.
}

export function retry(id, clientMsgId) {
  const pending = store.thread(id).pending.get(clientMsgId);
  if (pending) {
    transmit(pending);
    store.emit("thread", id);
  }
}

export function resendPending() {
  for (const thread of store.threads.values())
    for (const pending of thread.pending.values()) if (pending.state === "pending") transmit(pending);
}

export function acknowledged(ack) {
  const thread = store.thread(ack.conversation_id);
  const pending = thread.pending.get(ack.client_msg_id);
  if (!pending) return;
  const { state, ...fields } = pending;
  // `local`: made here from the ack; the server's own copy, with its quote and mentions,
  // replaces it when it comes.
  received({ ...fields, id: ack.id, seq: ack.seq, sent_at: ack.sent_at, local: true });
}

export function sendFailed(frame) {
  for (const [id, thread] of store.threads) {
    const pending = frame.ref && thread.pending.get(frame.ref);
    if (!pending) continue;
    pending.state = "failed";
    pending.error = frame.message;
    pending.code = frame.code;
    store.emit("thread", id);
    if (frame.retry_after) setTimeout(() => retry(id, frame.ref), frame.retry_after * 1000);
  }
}

// A message from the socket (or our own acknowledged send).
export function received(message) {
  const id = message.conversation_id;
  // Whoever wrote has stopped typing.
  if (store.typing.get(id)?.delete(message.sender_id)) store.emit("typing", id);
  const conversation = store.conversations.get(id);
  if (!conversation) {
    // Someone just added us: the list brings the conversation and its preview. What a
    // conversation I just lost still sends (my own leaving, say) brings nothing.
    if (!store.gone.has(id) || message.system?.action === "member_added") refreshConversations().catch(() => {});
    return;
  }
  const thread = store.thread(id);
  const before = thread.position;
  const added = thread.add(message);
  store.noteMessage(conversation, message);
  const system = message.type === "system";
  if (added && !system && message.sender_id !== store.me.id && id !== visibleConversation()) {
    conversation.unread_count += 1;
  }
  // A change to the group: its name, members and roles follow (or it is gone for me).
  if (added && system) groups.systemSeen(message);
  fillHole(id, thread, before, message.seq);
  receipts.noteHeld(id);
  store.emit("thread", id);
  store.emit("conversations");
  markRead(id);
}

// A hole between what we held and this entry (frames lost while the connection was
// failing): read it from history; every entry before this one came before the pages.
function fillHole(id, thread, before, seq) {
  if (thread.loaded && seq > before + 1) refetch(id, before, seq - 1).catch(() => {});
}

// `message_updated` or `message_deleted`: the message as it reads now, at the change's seq.
export function changed(frame) {
  const id = frame.message.conversation_id;
  const conversation = store.conversations.get(id);
  if (!conversation) return;
  const thread = store.thread(id);
  const before = thread.position;
  thread.change(frame);
  store.noteMessage(conversation, thread.byId.get(frame.message.id) ?? frame.message);
  fillHole(id, thread, before, frame.seq);
  receipts.noteHeld(id);
  store.emit("thread", id);
  store.emit("conversations");
}

// Edit and delete go over REST: its answer (or refusal) is this request's own, while the
// change reaches every device, this one included, as a frame.
export async function edit(id, messageId, content) {
  changed(await api.editMessage(id, messageId, content));
}

export async function remove(id, messageId) {
  await api.deleteMessage(id, messageId);
}

export function typingSeen(frame) {
  if (frame.user_id === store.me.id) return;
  const id = frame.conversation_id;
  if (!store.typing.has(id)) store.typing.set(id, new Map());
  store.typing.get(id).set(frame.user_id, {
    username: frame.username ?? "someone",
    until: Date.now() + TYPING_SHOWN_MS,
  });
  store.emit("typing", id);
  setTimeout(() => store.emit("typing", id), TYPING_SHOWN_MS + 50);
}

export function readSeen(frame) {
  const id = frame.conversation_id;
  if (frame.user_id === store.me.id) {
    // Read on another device of mine.
    const conversation = store.conversations.get(id);
    if (conversation && frame.seq >= conversation.last_seq) {
      conversation.unread_count = 0;
      store.emit("conversations");
    }
    return;
  }
  receipts.readSeen(frame);
}

export function typing(id) {
  const now = Date.now();
  if (now - (lastTypingSent.get(id) ?? 0) < TYPING_EVERY_MS) return;
  if (socket?.send({ event: "typing", conversation_id: id })) lastTypingSent.set(id, now);
}

function visibleConversation() {
  return document.visibilityState === "visible" ? store.activeId : null;
}

// Tell the server (and so the other members) how far we have read: the newest seq of the
// conversation on screen, once per new seq.
export function markRead(id) {
  if (id !== visibleConversation()) return;
  const seq = store.thread(id).lastSeq;
  const conversation = store.conversations.get(id);
  if (conversation && conversation.unread_count) {
    conversation.unread_count = 0;
    store.emit("conversations");
  }
  if (!seq || (readSent.get(id) ?? 0) >= seq) return;
  if (socket?.send({ event: "read", conversation_id: id, seq })) readSent.set(id, seq);
}

export function forgetSession() {
  receipts.forget();
  readSent.clear();
  lastTypingSent.clear();
  catchingUp.clear();
}
