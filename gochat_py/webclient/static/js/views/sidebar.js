// The left pane: who I am, the connection, and my conversations, most recent first.
import { h, replaceChildren } from "../dom.js";
import { icon } from "../icons.js";
import { avatar, listOfNames, listTime } from "../format.js";
import { store } from "../store.js";

const STATUS_TEXT = {
  connecting: "Connecting…",
  connected: "Connected",
  reconnecting: "Reconnecting…",
  offline: "Offline",
};

export function createSidebar({ onOpen, onNew, onLogout }) {
  const list = h("ul", { class: "conversation-list", role: "list" });
  const pill = h("span", { class: "status-pill", "data-status": store.status });
  const empty = h(
    "div",
    { class: "list-empty" },
    h("p", { text: "No conversations yet." }),
    h("button", { class: "button primary", type: "button", text: "Start a chat", onclick: onNew }),
  );
  const myId = h("button", {
    class: "my-id",
    type: "button",
    onclick: () => navigator.clipboard?.writeText(store.me.id),
  });

  const node = h(
    "aside",
    { class: "sidebar" },
    h(
      "header",
      { class: "sidebar-header" },
      avatar(store.me.username, store.me.id),
      h("div", { class: "me" }, h("strong", { class: "me-name", text: store.me.username }), myId),
      h("button", { class: "icon-button", type: "button", title: "New conversation", "aria-label": "New conversation", "data-action": "new", onclick: onNew }, icon("plus")),
      h("button", { class: "icon-button", type: "button", title: "Log out", "aria-label": "Log out", "data-action": "logout", onclick: onLogout }, icon("logout")),
    ),
    h("div", { class: "sidebar-sub" }, h("span", { class: "sidebar-title", text: "Chats" }), pill),
    empty,
    list,
  );

  function draw() {
    myId.textContent = store.me.email ?? store.me.id;
    myId.dataset.userId = store.me.id;
    // Others start a chat with this id (or the email); members are added by id.
    myId.title = `Your user id: ${store.me.id} (click to copy)`;
    const conversations = store.sortedConversations();
    empty.hidden = conversations.length > 0;
    replaceChildren(list, conversations.map(item));
  }

  function item(c) {
    const name = store.displayName(c);
    const typists = store.typists(c.id);
    let preview;
    if (typists.length) {
      const who = c.type === "group" ? `${listOfNames(typists)} ` : "";
      preview = h("span", { class: "preview typing-text", text: `${who}typing…` });
    } else if (c.last_message) {
      const m = c.last_message;
      const who = m.sender_id === store.me.id ? "You: " : c.type === "group" ? `${m.sender_username}: ` : "";
      preview = h("span", { class: "preview" }, who && h("span", { class: "preview-who", text: who }), m.content);
    } else {
      preview = h("span", { class: "preview muted", text: c.type === "group" ? `${c.participants.length} members` : "No messages yet" });
    }
    return h(
      "li",
      {},
      h(
        "button",
        {
          type: "button",
          class: `conversation${c.id === store.activeId ? " active" : ""}${c.unread_count ? " unread" : ""}`,
          "data-id": c.id,
          onclick: () => onOpen(c.id),
        },
        avatar(name, store.avatarKey(c)),
        h(
          "span",
          { class: "conversation-body" },
          h("span", { class: "conversation-top" }, h("span", { class: "conversation-name", text: name }), h("time", { class: "conversation-time", text: listTime(c.last_message?.sent_at ?? c.last_activity_at) })),
          h("span", { class: "conversation-bottom" }, preview, c.unread_count ? h("span", { class: "badge", text: c.unread_count > 99 ? "99+" : String(c.unread_count) }) : null),
        ),
      ),
    );
  }

  store.on("conversations", draw);
  store.on("typing", draw);
  store.on("status", (status) => {
    pill.dataset.status = status;
    pill.textContent = STATUS_TEXT[status] ?? status;
  });
  pill.textContent = STATUS_TEXT[store.status];
  draw();
  return node;
}
