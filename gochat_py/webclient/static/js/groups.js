// A group's life as this page sees it: its name, description, roles and owner, changed
// here (the server decides who may) or on any member's device (the system messages of
// its log, live or replayed), and its end for me: deleted (`conversation_deleted`), left,
// removed from (the system message or the notification, whichever comes first), or no
// longer found by a resume. A conversation that ends for me leaves the list, and
// `store.gone` says why to whoever has it open.
import * as api from "./api.js";
import { store } from "./store.js";

const refreshing = new Map(); // conversation id → the latest refresh queued

// The conversation as the server shows it now. One conversation's refreshes run one after
// another, so an older answer never lands over a newer; a 404 means it is gone for me.
export function refresh(id) {
  const previous = refreshing.get(id) ?? Promise.resolve();
  const run = previous
    .catch(() => {})
    .then(async () => {
      if (!store.conversations.has(id)) return;
      try {
        const conversation = await api.conversation(id);
        if (store.conversations.has(id)) store.upsertConversation(conversation);
      } catch (error) {
        if (error instanceof api.ApiError && error.status === 404) store.forget(id, "unavailable");
        else throw error;
      }
    })
    .finally(() => {
      if (refreshing.get(id) === run) refreshing.delete(id);
    });
  refreshing.set(id, run);
  return run;
}

// The member a group's change names, as this page knows them (before they leave it).
function person(id, userId) {
  if (userId === store.me.id) return { id: userId, name: "You", me: true };
  const p = store.conversations.get(id)?.participants.find((x) => x.id === userId);
  return { id: userId, name: p ? store.nameOf(p) : "Someone", me: false };
}

// A system message newly in a group's timeline.
export function systemSeen(message) {
  const id = message.conversation_id;
  const system = message.system ?? {};
  const me = store.me.id;
  if (system.action === "member_removed" && system.target_ids?.includes(me)) {
    store.forget(id, "removed", person(id, system.actor_id));
    return;
  }
  if (system.action === "member_left" && system.actor_id === me) {
    store.forget(id, "left", person(id, me));
    return;
  }
  // The new name shows at once; the rest (description, members, roles) as the server has it.
  const conversation = store.conversations.get(id);
  if (system.action === "renamed" && system.name && conversation) {
    conversation.name = system.name;
    store.emit("conversations");
  }
  refresh(id).catch(() => {});
}

// `removed_from_conversation`: a manager removed me (the notification names who).
export function removedBy(notification) {
  const id = notification.data?.conversation_id;
  if (!id || !store.conversations.has(id)) return;
  const actor = notification.actor;
  store.forget(id, "removed", actor ? { id: actor.id, name: store.nameOf(actor), me: false } : null);
}

// `conversation_deleted`: the group and its history are gone, for every member at once.
export function deleted(frame) {
  store.forget(frame.conversation_id, "deleted", person(frame.conversation_id, frame.actor_id));
}

// The conversations a resume named that the server no longer shows me.
export function notFound(ids) {
  for (const id of ids) store.forget(id, "unavailable");
}

// Who takes the group over when its owner leaves (the server's rule, postgres/groups.py):
// the longest-standing admin, else the longest-standing member; those who joined at once
// are settled by id. Null when the owner is its last member (the group ends).
export function successor(conversation) {
  const others = conversation.participants.filter((p) => p.id !== store.me.id);
  others.sort(
    (a, b) =>
      (b.role === "admin") - (a.role === "admin") || a.joined_at - b.joined_at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
  );
  return others[0] ?? null;
}

// Each change answers with the conversation, but a refresh queued behind the others keeps
// their order (a system message of this change may have queued one already).
export async function update(id, fields) {
  await api.updateGroup(id, fields);
  await refresh(id);
}

export async function setRole(id, userId, role) {
  await api.setRole(id, userId, role);
  await refresh(id);
}

export async function transfer(id, userId) {
  await api.transferOwnership(id, userId);
  await refresh(id);
}

export async function addMembers(id, userIds) {
  await api.addMembers(id, userIds);
  await refresh(id);
}

export async function removeMember(id, userId) {
  await api.removeMember(id, userId);
  await refresh(id);
}

export async function leave(id) {
  await api.removeMember(id, store.me.id);
  store.forget(id, "left", person(id, store.me.id));
}

export async function deleteGroup(id) {
  await api.deleteGroup(id);
  store.forget(id, "deleted", person(id, store.me.id));
}
