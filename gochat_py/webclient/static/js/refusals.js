// The server's refusals about people and groups, in words a reader understands: the codes
// come from REST errors and from the socket's error frames (docs/websocket.md).
import { ApiError } from "./api.js";
const TEXT = {
  blocked: (name) => `You can't message ${name}: one of you has blocked the other.`,
  not_a_contact: (name) => `${name} only takes messages from contacts. Send a contact request first.`,
  request_pending: () => "A contact request is already waiting.",
  already_contacts: () => "You are contacts already.",
  unblock_first: (name) => `Unblock ${name} first.`,
  user_not_found: () => "That person does not exist.",
  rate_limited: () => "Too many requests: try again in a moment.",
  // A group's settings, members, roles and owner (`name`: the member the change names).
  not_the_owner: () => "Only the group's owner can do that.",
  not_a_manager: () => "Only the group's owner or an admin can do that.",
  cannot_remove_owner: () => "The owner can't be removed: they can leave, or hand the group to someone else.",
  owner_role: () => "The owner stays the owner until they hand the group to someone else.",
  already_owner: () => "You own this group already.",
  not_a_member: (name) => `${name} is no longer in this group.`,
  conversation_not_found: () => "This group no longer exists, or you are no longer in it.",
  invalid_name: () => "A group needs a name.",
  unknown_users: () => "No account has that user id.",
  too_many_participants: () => "The group is full.",
};

export function refusal(code, name = "This person", fallback = "Something went wrong") {
  return TEXT[code]?.(name) ?? fallback;
}

// A failed request in words: the server's refusal (`texts` first, then the common ones,
// then the server's own message), or that the server could not be reached.
export function failureInWords(error, name, texts = {}) {
  if (!(error instanceof ApiError)) return "Could not reach the server. Try again.";
  return texts[error.code] ?? refusal(error.code, name, error.message);
}

export const isPeopleRefusal = (code) => code === "blocked" || code === "not_a_contact";
