// Keeping the store's people in step with the server: presence (the connect list, live
// changes, REST for whoever the page shows first), contacts, friend requests, blocks and
// notifications, loaded once and then kept live by the socket's frames.
import * as api from "./api.js";
import * as groups from "./groups.js";
import { store } from "./store.js";
import { refreshConversations } from "./sync.js";

// The presence route answers for at most this many ids per call.
const PRESENCE_BATCH = 100;
// Presence asked once per person: after that, frames keep it current.
const asked = new Set();

export async function loadPeople() {
  const [contacts, incoming, outgoing, blocked, notifications] = await Promise.all([
    api.contacts(),
    api.contactRequests("incoming"),
    api.contactRequests("outgoing"),
    api.blocks(),
    api.notifications(),
  ]);
  setContacts(contacts);
  store.incoming = new Map(incoming.map((r) => [r.id, r]));
  store.outgoing = new Map(outgoing.map((r) => [r.id, r]));
  store.blocked = new Map(blocked.map((b) => [b.user.id, b]));
  store.notifications = notifications.notifications;
  store.unreadNotifications = notifications.unread_count;
  store.emit("people");
  store.emit("notifications");
  await trackPresence();
}

function setContacts(list) {
  store.contacts = new Map(list.map((c) => [c.user.id, c]));
  for (const c of list) {
    store.noteName(c.user);
    store.presence.set(c.user.id, c.presence);
    asked.add(c.user.id);
  }
  store.emit("presence");
}

async function reloadContacts() {
  setContacts(await api.contacts());
  store.emit("people");
  store.emit("conversations");
}

// Presence of each direct conversation's other member the page has not asked about yet
// (a conversation that started after the socket's presence_list, say).
export async function trackPresence() {
  const ids = [];
  for (const c of store.conversations.values()) {
    const other = store.partner(c);
    if (other && !asked.has(other.id)) ids.push(other.id);
  }
  for (const id of ids) asked.add(id);
  for (let i = 0; i < ids.length; i += PRESENCE_BATCH) {
    const states = await api.presence(ids.slice(i, i + PRESENCE_BATCH));
    for (const s of states) store.presence.set(s.user_id, s);
  }
  if (ids.length) store.emit("presence");
}

// Right after connecting: everyone listed is online, anyone else I held as online is not
// (they left while the socket was down), and REST says when they were last seen.
function presenceList(frame) {
  const online = new Set(frame.online_users);
  for (const [id, state] of store.presence) {
    if (state.status === "online" && !online.has(id)) {
      store.presence.set(id, { status: "offline", last_seen_at: null });
      asked.delete(id);
    }
  }
  for (const id of online) store.presence.set(id, { status: "online", last_seen_at: null });
  store.emit("presence");
  trackPresence().catch(() => {});
}

function presenceChanged(frame) {
  store.presence.set(frame.user_id, { status: frame.status, last_seen_at: frame.last_seen_at ?? null });
  store.emit("presence");
}

function requestSeen(request) {
  const incoming = request.to.id === store.me.id;
  const side = incoming ? store.incoming : store.outgoing;
  if (request.status === "pending") side.set(request.id, request);
  else side.delete(request.id);
  store.emit("people");
  if (request.status === "accepted") reloadContacts().catch(() => {});
}

function contactRemoved(frame) {
  store.contacts.delete(frame.user_id);
  store.emit("people");
  store.emit("conversations");
}

function notificationSeen(notification) {
  if (store.notifications.some((n) => n.id === notification.id)) return;
  store.notifications.unshift(notification);
  if (!notification.read_at) store.unreadNotifications += 1;
  store.emit("notifications");
  // Added to a group or removed from one: the list changes now, not at its next message.
  // A removal may come before the timeline's line that says so, and is as good a word.
  if (notification.type === "removed_from_conversation") groups.removedBy(notification);
  else if (notification.type.endsWith("_conversation")) refreshConversations().catch(() => {});
}

function notificationsRead(frame) {
  const now = Date.now();
  const ids = new Set(frame.ids);
  for (const n of store.notifications) if (!n.read_at && (frame.all || ids.has(n.id))) n.read_at = now;
  store.unreadNotifications = frame.unread_count;
  store.emit("notifications");
}

// The socket's people frames; false for any other frame.
export function handleFrame(frame) {
  switch (frame.event) {
    case "presence_list":
      presenceList(frame);
      return true;
    case "presence":
      presenceChanged(frame);
      return true;
    case "contact_request":
    case "contact_request_updated":
      requestSeen(frame.request);
      return true;
    case "contact_removed":
      contactRemoved(frame);
      return true;
    case "notification":
      notificationSeen(frame.notification);
      return true;
    case "notifications_read":
      notificationsRead(frame);
      return true;
    default:
      return false;
  }
}

export async function sendRequest(userId) {
  const request = await api.askContact(userId);
  // 200 accepted: they had asked me first, and we are contacts now.
  requestSeen(request);
}

export async function decide(request, accept) {
  requestSeen(accept ? await api.acceptRequest(request.id) : await api.rejectRequest(request.id));
}

export async function cancel(request) {
  await api.cancelRequest(request.id);
  requestSeen({ ...request, status: "cancelled" });
}

export async function unfriend(userId) {
  await api.removeContact(userId);
  contactRemoved({ user_id: userId });
}

export async function block(user) {
  const result = await api.block(user.id);
  store.blocked.set(user.id, result);
  // A block ends the friendship and the pair's requests, silently: nobody is told.
  store.contacts.delete(user.id);
  for (const side of [store.incoming, store.outgoing])
    for (const [id, r] of side) if (r.from.id === user.id || r.to.id === user.id) side.delete(id);
  store.emit("people");
  store.emit("conversations");
}

export async function unblock(userId) {
  await api.unblock(userId);
  store.blocked.delete(userId);
  store.emit("people");
}

// No ids: all of them. Every device of mine hears it too (notifications_read).
export async function markNotificationsRead(ids) {
  const result = await api.markNotificationsRead(ids);
  notificationsRead({ ids: ids ?? [], all: !ids, unread_count: result.unread_count });
}

export function forgetPeople() {
  asked.clear();
}
