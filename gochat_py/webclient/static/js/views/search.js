// Message search in the sidebar: a box above the conversations; while it holds text, the
// matches in my conversations take the list's place, newest first, each with its
// conversation, sender, time and the matched words marked. A click opens the conversation.
import { h, replaceChildren } from "../dom.js";
import { icon } from "../icons.js";
import { listTime } from "../format.js";
import * as api from "../api.js";
import { store } from "../store.js";

const SEARCH_AFTER_MS = 300; // typing pauses this long before a request goes out

export function createMessageSearch({ onOpen, onActive }) {
  const query = h("input", { type: "search", name: "message-search", placeholder: "Search messages", autocomplete: "off", "aria-label": "Search messages" });
  const list = h("ul", { class: "conversation-list message-results", role: "list", hidden: true });
  const status = h("p", { class: "list-empty search-status", hidden: true });
  const more = h("button", { class: "button small", type: "button", text: "More results", hidden: true, "data-action": "more-results", onclick: () => search(lastQuery, cursor) });
  const node = h("div", { class: "message-search" }, h("label", { class: "search sidebar-search" }, icon("search", 18), query));
  const results = h("div", { class: "message-search-results", hidden: true }, status, list, more);

  let timer = null;
  let asked = 0; // answers to an older query than the newest are dropped
  let lastQuery = "";
  let cursor = null;
  let found = [];

  query.addEventListener("input", () => {
    clearTimeout(timer);
    const q = query.value.trim();
    if (!q) return clear();
    timer = setTimeout(() => search(q, null), SEARCH_AFTER_MS);
  });
  query.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      query.value = "";
      clear();
    }
  });

  function clear() {
    asked++;
    found = [];
    replaceChildren(list);
    results.hidden = true;
    onActive(false);
  }

  async function search(q, from) {
    const mine = ++asked;
    try {
      const body = await api.searchMessages(q, { cursor: from });
      if (mine !== asked) return;
      lastQuery = q;
      cursor = body.next_cursor;
      found = from ? [...found, ...body.results] : body.results;
      draw();
    } catch (e) {
      if (mine !== asked) return;
      found = [];
      cursor = null;
      draw(e.message);
    }
  }

  function draw(error) {
    results.hidden = false;
    onActive(true);
    status.hidden = found.length > 0 && !error;
    status.textContent = error ?? (cursor ? "Nothing yet: look further with More results." : "No messages found.");
    more.hidden = !cursor;
    list.hidden = found.length === 0;
    replaceChildren(list, found.map(item));
  }

  function item({ message, highlight }) {
    const conversation = store.conversations.get(message.conversation_id);
    const name = conversation ? store.displayName(conversation) : "Conversation";
    const who = message.sender_id === store.me.id ? "You" : message.sender_username;
    const excerpt = highlight.map((f) => (f.match ? h("mark", { text: f.text }) : f.text));
    return h(
      "li",
      {},
      h(
        "button",
        { type: "button", class: "conversation message-result", "data-id": message.conversation_id, "data-message-id": message.id, onclick: () => onOpen(message.conversation_id) },
        h(
          "span",
          { class: "conversation-body" },
          h("span", { class: "conversation-top" }, h("span", { class: "conversation-name", text: name }), h("time", { class: "conversation-time", text: listTime(message.sent_at) })),
          h("span", { class: "conversation-bottom" }, h("span", { class: "preview result-excerpt" }, h("span", { class: "preview-who", text: `${who}: ` }), excerpt)),
        ),
      ),
    );
  }

  return { node, results };
}
