// The client's state: the conversations, each one's messages (keyed by id, ordered by
// seq, so a message that arrives twice — live and in a catch-up page — is held once),
// the sends not yet acknowledged, who is typing and how far others have read; and the
// people around me: who is online, my contacts, friend requests, blocks, notifications.
// Views subscribe to the topics they draw and redraw when one changes.

export class Thread {
  constructor() {
    this.byId = new Map();
    this.ordered = []; // confirmed messages, ascending seq
    this.pending = new Map(); // client_msg_id → the unacknowledged send
    this.olderCursor = null;
    this.hasOlder = false;
    this.loaded = false; // the newest page has been fetched
    this.loadingOlder = false;
  }

  get lastSeq() {
    return this.ordered.at(-1)?.seq ?? 0;
  }

  get firstSeq() {
    return this.ordered[0]?.seq ?? 0;
  }

  // True when the message was new to this thread.
  add(message) {
    if (message.client_msg_id) this.pending.delete(message.client_msg_id);
    if (this.byId.has(message.id)) return false;
    if (this.ordered.some((m) => m.seq === message.seq)) return false;
    this.byId.set(message.id, message);
    let i = this.ordered.length;
    while (i > 0 && this.ordered[i - 1].seq > message.seq) i -= 1;
    this.ordered.splice(i, 0, message);
    return true;
  }
}

class Store {
  constructor() {
    this.me = null;
    this.status = "connecting";
    this.conversations = new Map();
    this.threads = new Map();
    this.typing = new Map(); // conversation id → Map(user id → {username, until})
    this.readBy = new Map(); // conversation id → Map(user id → seq)
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
    this.emit("conversations");
  }

  upsertConversation(conversation) {
    const known = this.conversations.get(conversation.id);
    this.conversations.set(conversation.id, { ...known, ...conversation });
    this.emit("conversations");
  }

  noteMessage(conversation, message) {
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

  avatarKey(conversation) {
    if (conversation.type === "group") return conversation.id;
    return conversation.participants.find((p) => p.id !== this.me?.id)?.id ?? conversation.id;
  }

  typists(conversationId) {
    const now = Date.now();
    const users = this.typing.get(conversationId);
    if (!users) return [];
    return [...users.values()].filter((t) => t.until > now).map((t) => t.username);
  }
}

export const store = new Store();
