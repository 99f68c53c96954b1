// The server's refusals about people, in words a reader understands: the codes come from
// REST errors and from the socket's error frames (docs/websocket.md).
const TEXT = {
  blocked: (name) => `You can't message ${name}: one of you has blocked the other.`,
  not_a_contact: (name) => `${name} only takes messages from contacts. Send a contact request first.`,
  request_pending: () => "A contact request is already waiting.",
  already_contacts: () => "You are contacts already.",
  unblock_first: (name) => `Unblock ${name} first.`,
  user_not_found: () => "That person does not exist.",
  rate_limited: () => "Too many requests: try again in a moment.",
};

export function refusal(code, name = "This person", fallback = "Something went wrong") {
  return TEXT[code]?.(name) ?? fallback;
}

export const isPeopleRefusal = (code) => code === "blocked" || code === "not_a_contact";
