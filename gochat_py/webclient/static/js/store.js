// The client's state: the conversations, each one's messages (keyed by id, ordered by
// seq, so a message that arrives twice — live and in a catch-up page — is held once),
// the sends not yet acknowledged, who is typing and how far the others have received and
// read (their marks, for my messages' ticks); and the
// people around me: who is online, my contacts, friend requests, blocks, notifications.
// Views subscribe to the topics they draw and redraw when one changes.

// Changes of messages a thread does not hold are kept this many at most, the newest: a page
// on its way when they came is a matter of seconds and a few changes.
const UNHELD_CHANGES_MAX = 200;

export class Thread {
  constructor() {
    this.byId = new Map();
    this.ordered = []; // confirmed messages, ascending seq
    this.pending = new Map(); // client_msg_id → the unacknowledged send
    this.olderCursor = null;
    this.hasOlder = false;
    this.loaded = false; // the newest page has been fetched
    this.loadingOlder = false;
    // The highest seq of the conversation's log held here: messages, and the edits and
    // deletes that take seqs of their own. Resume and `received` say this much.
    this.position = 0;
    // Where a hole being filled from history starts (null: no hole): up to there the
    // thread is whole, and that is what resume and `received` may claim.
    this.holeAfter = null;
    // Edits and deletes of messages not held yet, as they left them (message id → the
    // message): a page already on its way may bring the message as it read before.
    this.unheldChanges = new Map();
  }

  get heldThrough() {
    return this.holeAfter ?? this.position;
  }

  get lastSeq() {
    return this.ordered.at(-1)?.seq ?? 0;
  }

  get firstSeq() {
    return this.ordered[0]?.seq ?? 0;
  }

  // True when the message was new to this thread. A message held already is replaced
  // when this copy is the later word on it (the server's copy of my own acknowledged send,
  // or an edit or delete a history page shows).
  add(message) {
    const changed = this.unheldChanges.get(message.id);
    if (changed) {
      this.unheldChanges.delete(message.id);
      if (supersedes(changed, message)) message = changed;
    }
    if (message.client_msg_id) this.pending.delete(message.client_msg_id);
    this.position = Math.max(this.position, message.seq);
    const held = this.byId.get(message.id);
    if (held) {
      if (supersedes(message, held)) this.replace(held, message);
      return false;
    }
    if (this.ordered.some((m) => m.seq === message.seq)) return false;
    this.byId.set(message.id, message);
    let i = this.ordered.length;
    while (i > 0 && this.ordered[i - 1].seq > message.seq) i -= 1;
    this.ordered.splice(i, 0, message);
    return true;
  }

  // An edit or a delete (`message_updated`, `message_deleted`) at its own seq. True when it
  // changed what is held; a message not held (not loaded yet) is kept changed for when it
  // comes.
  change(frame) {
    this.position = Math.max(this.position, frame.seq);
    const held = this.byId.get(frame.message.id);
    if (!held) {
      this.unheldChanges.delete(frame.message.id);
      this.unheldChanges.set(frame.message.id, frame.message);
      if (this.unheldChanges.size > UNHELD_CHANGES_MAX) this.unheldChanges.delete(this.unheldChanges.keys().next().value);
      return false;
    }
    if (!supersedes(frame.message, held)) return false;
    this.replace(held, frame.message);
    return true;
  }

  // Messages older than `seq` leave (the refetch after a gap could not reach them).
  dropBefore(seq) {
    const kept = this.ordered.findIndex((m) => m.seq >= seq);
    const dropped = kept < 0 ? this.ordered : this.ordered.slice(0, kept);
    for (const m of dropped) this.byId.delete(m.id);
    this.ordered = kept < 0 ? [] : this.ordered.slice(kept);
  }

  replace(held, message) {
    this.byId.set(message.id, message);
    this.ordered[this.ordered.indexOf(held)] = message;
  }
}

// Whether `next` says more than `held` about the same message: a tombstone stays one, an
// edit replaces an older edit, and the server's copy replaces the one made from an ack.
function supersedes(next, held) {
  if (held.deleted) return false;
  if (next.deleted) return true;
  if ((next.edited_at ?? 0) !== (held.edited_at ?? 0)) return (next.edited_at ?? 0) > (held.edited_at ?? 0);
  return Boolean(held.local) && !next.local;
}

class Store {
  constructor() {
    this.me = null;
    this.status = "connecting";
    this.conversations = new Map();
    this.threads = new Map();
    this.typing = new Map(); // conversation id → Map(user id → {username, until})
    this.readBy = new Map(); // conversation id → Map(user id → seq)
    this.deliveredTo = new Map(); // conversation id → Map(user id → seq)
    // Conversations I lost while the page had them: deleted, left, removed from. id →
    // {name, how: "deleted" | "removed" | "left" | "unavailable", by: a username or null},
    // for the notice that takes the timeline's place.
    this.gone = new Map();
    this.activeId = null;
    this.listeners = new Map();
    this.clearPeople();
  }

  clearPeople() {
    this.presence = new Map(); // user id → {status, last_seen_at}
    this.names = new Map(); // user id → display name, where the API gave one
    this.contacts = new Map(); // user id → {user, since}
    this.incoming = new Map(); // request id → request
    this.outgoing = new Map();
    this.blocked = new Map(); // user id → {user, since}
    this.notifications = [];
    this.unreadNotifications = 0;
  }

  on(topic, callback) {
    if (!this.listeners.has(topic)) this.listeners.set(topic, new Set());
    this.listeners.get(topic).add(callback);
  }

  off(topic, callback) {
    this.listeners.get(topic)?.delete(callback);
  }

  emit(topic, detail) {
    for (const callback of this.listeners.get(topic) ?? []) callback(detail);
  }

  reset() {
    this.me = null;
    this.conversations.clear();
    this.threads.clear();
    this.typing.clear();
    this.readBy.clear();
    this.deliveredTo.clear();
    this.gone.clear();
    this.activeId = null;
    this.listeners.clear();
    this.clearPeople();
  }

  thread(id) {
    if (!this.threads.has(id)) this.threads.set(id, new Thread());
    return this.threads.get(id);
  }

  // Most recently active first, as the server orders them.
  sortedConversations() {
    return [...this.conversations.values()].sort(
      (a, b) => b.last_activity_at - a.last_activity_at || (a.id < b.id ? -1 : 1),
    );
  }

  setConversations(list) {
    const fresh = new Map(list.map((c) => [c.id, c]));
    // A conversation the page has messages of keeps the newest it knows.
    for (const c of fresh.values()) {
      const known = this.threads.get(c.id)?.ordered.at(-1);
      if (known && known.seq > (c.last_message?.seq ?? 0)) this.noteMessage(c, known);
    }
    this.conversations = fresh;
    for (const id of fresh.keys()) this.gone.delete(id);
    this.emit("conversations");
  }

  upsertConversation(conversation) {
    const known = this.conversations.get(conversation.id);
    this.conversations.set(conversation.id, { ...known, ...conversation });
    this.gone.delete(conversation.id);
    this.emit("conversations");
  }

  // A conversation I can no longer see: out of the list, its messages and marks dropped
  // (a resume names it no more), `gone` saying why for whoever has it open.
  forget(id, how, by = null) {
    const conversation = this.conversations.get(id);
    if (!conversation && !this.threads.has(id)) return;
    const name = conversation ? this.displayName(conversation) : (this.gone.get(id)?.name ?? "");
    this.gone.set(id, { name, how, by });
    this.conversations.delete(id);
    this.threads.delete(id);
    this.typing.delete(id);
    this.readBy.delete(id);
    this.deliveredTo.delete(id);
    this.emit("conversations");
  }

  noteMessage(conversation, message) {
    // The preview follows an edit or a delete of the message it shows.
    if (conversation.last_message?.id === message.id) {
      conversation.last_message = message;
      return;
    }
    if ((conversation.last_message?.seq ?? 0) >= message.seq) return;
    conversation.last_message = message;
    conversation.last_seq = Math.max(conversation.last_seq, message.seq);
    conversation.last_activity_at = Math.max(conversation.last_activity_at, message.sent_at);
  }

  displayName(conversation) {
    if (!conversation) return "";
    if (conversation.type === "group") return conversation.name || "Group";
    const other = this.partner(conversation);
    return other ? this.nameOf(other) : "Just you";
  }

  // The other member of a direct conversation.
  partner(conversation) {
    if (conversation?.type !== "direct") return null;
    return conversation.participants.find((p) => p.id !== this.me?.id) ?? null;
  }

  // A person by the name they chose, else their username.
  nameOf(user) {
    return user.display_name || this.names.get(user.id) || user.username;
  }

  noteName(user) {
    if (user.display_name) this.names.set(user.id, user.display_name);
    else this.names.delete(user.id);
  }

  isOnline(userId) {
    return this.presence.get(userId)?.status === "online";
  }

  // A conversation's picture: a group's own, a direct conversation's partner's.
  avatarUrl(conversation) {
    if (conversation.type === "group") return conversation.avatar_url ?? null;
    return this.partner(conversation)?.avatar_url ?? null;
  }

  // A member's picture, as the conversation's participants list says.
  pictureOf(conversation, userId) {
    if (userId === this.me?.id) return this.me.avatar_url ?? null;
    return conversation?.participants.find((p) => p.id === userId)?.avatar_url ?? null;
  }

  avatarKey(conversation) {
    if (conversation.type === "group") return conversation.id;
    return conversation.participants.find((p) => p.id !== this.me?.id)?.id ?? conversation.id;
  }

  // My role in a conversation: "owner", "admin" or "member" (null: not a member).
  myRole(conversation) {
    return conversation?.participants.find((p) => p.id === this.me?.id)?.role ?? null;
  }

  // Whether I may delete this message: mine, or anyone's in a group I own or administer.
  canDelete(conversation, message) {
    if (message.sender_id === this.me?.id) return true;
    if (conversation.type !== "group") return false;
    const role = this.myRole(conversation);
    return role === "owner" || role === "admin";
  }

  typists(conversationId) {
    const now = Date.now();
    const users = this.typing.get(conversationId);
    if (!users) return [];
    return [...users.values()].filter((t) => t.until > now).map((t) => t.username);
  }
}

export const store = new Store();
