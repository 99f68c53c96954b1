// The REST API. The session lives in httpOnly cookies the server sets at login, register
// and refresh: this module never sees a token except to hand a fresh one to the socket.
// A 401 is answered once by a quiet refresh (the refresh cookie) and a retry.

const API = "/api/v1";

export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

let sessionLost = () => {};
let refreshing = null;

export function onSessionLost(callback) {
  sessionLost = callback;
}

async function call(method, path, body) {
  const init = { method, credentials: "include", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(API + path, init);
  if (response.status === 204) return { response, data: null };
  const data = await response.json().catch(() => null);
  return { response, data };
}

function failure(response, data) {
  const error = data?.error ?? {};
  return new ApiError(
    response.status,
    error.code ?? `http_${response.status}`,
    error.message ?? response.statusText ?? "request failed",
    error.field,
  );
}

// Several requests may see 401 at once: they share one refresh, since each refresh
// spends the refresh token and a second one would present a spent token.
export function refresh() {
  refreshing ??= call("POST", "/auth/refresh")
    .then(({ response, data }) => {
      if (!response.ok) throw failure(response, data);
      return data;
    })
    .finally(() => {
      refreshing = null;
    });
  return refreshing;
}

async function request(method, path, body) {
  let { response, data } = await call(method, path, body);
  if (response.status === 401) {
    try {
      await refresh();
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) sessionLost();
      throw error;
    }
    ({ response, data } = await call(method, path, body));
    if (response.status === 401) sessionLost();
  }
  if (!response.ok) throw failure(response, data);
  return data;
}

async function unauthenticated(method, path, body) {
  const { response, data } = await call(method, path, body);
  if (!response.ok) throw failure(response, data);
  return data;
}

// --- shapes -------------------------------------------------------------------------
// A conversation item is `{conversation: {...}, participants, last_message, unread_count}`;
// the client keeps one flat form.
export function toConversation(item) {
  const c = item.conversation;
  return {
    id: c.id,
    type: c.type,
    name: c.name ?? null,
    description: c.description ?? null,
    avatar_url: c.avatar_url ?? null,
    created_by: c.created_by,
    created_at: c.created_at,
    last_seq: c.last_seq,
    last_activity_at: c.last_activity_at,
    participants: item.participants.filter((p) => p.is_active),
    last_message: item.last_message,
    unread_count: item.unread_count,
  };
}

export function toPage(body) {
  return { messages: body.messages, nextCursor: body.next_cursor, hasMore: body.has_more };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

// "bob@example.com, 6f1c…" → {ids, emails}: people are named by user id or by email.
export function splitPeople(text) {
  const ids = [];
  const emails = [];
  for (const word of text.split(/[\s,;]+/).filter(Boolean)) {
    if (UUID.test(word)) ids.push(word.toLowerCase());
    else emails.push(word);
  }
  return { ids, emails };
}

// --- auth ---------------------------------------------------------------------------
export const register = (email, username, password) =>
  unauthenticated("POST", "/auth/register", { email, username, password });
export const login = (email, password) =>
  unauthenticated("POST", "/auth/login", { email, password });
export const logout = () => unauthenticated("POST", "/auth/logout");
export const me = () => request("GET", "/auth/me");

// --- conversations ------------------------------------------------------------------
export async function conversations(limit = 100) {
  const all = [];
  let cursor = null;
  do {
    const query = new URLSearchParams({ limit: String(limit) });
    if (cursor) query.set("cursor", cursor);
    const body = await request("GET", `/conversations?${query}`);
    all.push(...body.conversations.map(toConversation));
    cursor = body.next_cursor;
  } while (cursor);
  return all;
}

export const conversation = async (id) =>
  toConversation(await request("GET", `/conversations/${id}`));

export async function startDirect(person) {
  const { ids, emails } = splitPeople(person);
  const body = ids.length ? { participant_id: ids[0] } : { participant_email: emails[0] };
  return toConversation(await request("POST", "/conversations", body));
}

export async function createGroup(name, people) {
  const { ids, emails } = splitPeople(people);
  const body = { name, participant_ids: ids };
  if (emails.length) body.participant_emails = emails;
  return toConversation(await request("POST", "/conversations", body));
}

export const addMembers = (id, userIds) =>
  request("POST", `/conversations/${id}/members`, { user_ids: userIds });
export const removeMember = (id, userId) =>
  request("DELETE", `/conversations/${id}/members/${userId}`);

// --- a group's settings, roles, owner and end (owner or admin; the server says which) ---
// Each answers the conversation as it is now, but deleteGroup (nothing left to show).
export const updateGroup = async (id, fields) =>
  toConversation(await request("PATCH", `/conversations/${id}`, fields));
export const setRole = async (id, userId, role) =>
  toConversation(await request("PATCH", `/conversations/${id}/members/${userId}`, { role }));
export const transferOwnership = async (id, userId) =>
  toConversation(await request("POST", `/conversations/${id}/owner`, { user_id: userId }));
export const deleteGroup = (id) => request("DELETE", `/conversations/${id}`);

// --- messages -----------------------------------------------------------------------
export async function messages(id, { cursor, afterSeq, limit } = {}) {
  const query = new URLSearchParams();
  if (limit) query.set("limit", String(limit));
  if (cursor) query.set("cursor", cursor);
  else if (afterSeq !== undefined) query.set("after_seq", String(afterSeq));
  return toPage(await request("GET", `/conversations/${id}/messages?${query}`));
}

export const editMessage = (id, messageId, content) =>
  request("PATCH", `/conversations/${id}/messages/${messageId}`, { content });
export const deleteMessage = (id, messageId) =>
  request("DELETE", `/conversations/${id}/messages/${messageId}`);
export const receipts = (id) => request("GET", `/conversations/${id}/receipts`);

// --- people: profiles, search, contacts, blocks -------------------------------------
export const myProfile = () => request("GET", "/users/me");
export const updateProfile = (fields) => request("PATCH", "/users/me", fields);
// The server bounds each search request's work, so a page may come back short, even
// empty, with a cursor to go on: follow it, a few requests at most, to fill the list.
const SEARCH_REQUESTS_MAX = 5;
export async function searchUsers(q, limit = 20) {
  const users = [];
  let cursor = null;
  for (let asked = 0; asked < SEARCH_REQUESTS_MAX; asked++) {
    const query = new URLSearchParams({ q, limit: String(limit - users.length) });
    if (cursor) query.set("cursor", cursor);
    const body = await request("GET", `/users?${query}`);
    users.push(...body.users);
    cursor = body.next_cursor;
    if (!cursor || users.length >= limit) break;
  }
  return { users, next_cursor: cursor };
}

// Messages in my conversations, newest first: the same bounded requests, followed the same way.
export async function searchMessages(q, { cursor = null, limit = 20 } = {}) {
  const results = [];
  for (let asked = 0; asked < SEARCH_REQUESTS_MAX; asked++) {
    const query = new URLSearchParams({ q, limit: String(limit - results.length) });
    if (cursor) query.set("cursor", cursor);
    const body = await request("GET", `/search/messages?${query}`);
    results.push(...body.results);
    cursor = body.next_cursor;
    if (!cursor || results.length >= limit) break;
  }
  return { results, next_cursor: cursor };
}

export async function contacts() {
  const all = [];
  let cursor = null;
  do {
    const query = new URLSearchParams({ limit: "100" });
    if (cursor) query.set("cursor", cursor);
    const body = await request("GET", `/contacts?${query}`);
    all.push(...body.contacts);
    cursor = body.next_cursor;
  } while (cursor);
  return all;
}

export const contactRequests = async (direction) =>
  (await request("GET", `/contacts/requests?direction=${direction}&limit=100`)).requests;
export const askContact = (userId) => request("POST", "/contacts/requests", { user_id: userId });
export const acceptRequest = (id) => request("POST", `/contacts/requests/${id}/accept`);
export const rejectRequest = (id) => request("POST", `/contacts/requests/${id}/reject`);
export const cancelRequest = (id) => request("DELETE", `/contacts/requests/${id}`);
export const removeContact = (userId) => request("DELETE", `/contacts/${userId}`);
export const blocks = async () => (await request("GET", "/blocks?limit=100")).blocks;
export const block = (userId) => request("POST", "/blocks", { user_id: userId });
export const unblock = (userId) => request("DELETE", `/blocks/${userId}`);

// --- presence and notifications -----------------------------------------------------
// At most 100 ids per call (the route's limit).
export const presence = async (userIds) =>
  (await request("GET", `/presence?${new URLSearchParams({ user_ids: userIds.join(",") })}`)).presence;
export const notifications = (limit = 30) => request("GET", `/notifications?limit=${limit}`);
// No ids: every notification up to now.
export const markNotificationsRead = (ids) =>
  request("POST", "/notifications/read", ids ? { ids } : { all: true });
