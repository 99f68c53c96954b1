// The left pane: who I am (a click opens my profile), the bell, people, the connection, and
// message search, and my conversations, most recent first, a green dot on whoever of them is
// online (while a search holds text, its results stand in their place).
import { h, replaceChildren } from "../dom.js";
import { icon } from "../icons.js";
import { avatar, listOfNames, listTime } from "../format.js";
import { store } from "../store.js";
import { createBell } from "./notifications.js";
import { createMessageSearch } from "./search.js";

const STATUS_TEXT = {
  connecting: "Connecting…",
  connected: "Connected",
  reconnecting: "Reconnecting…",
  offline: "Offline",
};

export function createSidebar({ onOpen, onNew, onLogout, onPeople, onProfile }) {
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

  const title = h("span", { class: "sidebar-title", text: "Chats" });
  let searching = false;
  const messageSearch = createMessageSearch({
    onOpen,
    onActive: (active) => {
      searching = active;
      draw();
    },
  });

  const meAvatar = h("button", { class: "me-avatar", type: "button", title: "Profile", "aria-label": "Profile", "data-action": "profile", onclick: onProfile });
  const meName = h("button", { class: "me-name", type: "button", title: "Profile", onclick: onProfile });

  const node = h(
    "aside",
    { class: "sidebar" },
    h(
      "header",
      { class: "sidebar-header" },
      meAvatar,
      h("div", { class: "me" }, meName, myId),
      createBell({ onOpenConversation: onOpen, onOpenPeople: onPeople }),
      h("button", { class: "icon-button", type: "button", title: "People", "aria-label": "People", "data-action": "people", onclick: onPeople }, icon("contacts")),
      h("button", { class: "icon-button", type: "button", title: "New conversation", "aria-label": "New conversation", "data-action": "new", onclick: onNew }, icon("plus")),
      h("button", { class: "icon-button", type: "button", title: "Log out", "aria-label": "Log out", "data-action": "logout", onclick: onLogout }, icon("logout")),
    ),
    messageSearch.node,
    h("div", { class: "sidebar-sub" }, title, pill),
    messageSearch.results,
    empty,
    list,
  );

  function drawMe() {
    const name = store.nameOf(store.me);
    meName.textContent = name;
    replaceChildren(meAvatar, avatar(name, store.me.id, "md", false, store.me.avatar_url));
  }

  function draw() {
    myId.textContent = store.me.email ?? store.me.id;
    myId.dataset.userId = store.me.id;
    // Others start a chat with this id (or the email); members are added by id.
    myId.title = `Your user id: ${store.me.id} (click to copy)`;
    const conversations = store.sortedConversations();
    empty.hidden = searching || conversations.length > 0;
    list.hidden = searching;
    title.textContent = searching ? "Messages" : "Chats";
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
      if (m.type === "system") preview = h("span", { class: "preview muted", text: m.content });
      else {
        const who = m.sender_id === store.me.id ? "You: " : c.type === "group" ? `${m.sender_username}: ` : "";
        const text = m.deleted ? h("em", { text: "This message was deleted" }) : mediaPreview(m) ?? m.content;
        preview = h("span", { class: "preview" }, who && h("span", { class: "preview-who", text: who }), text);
      }
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
        avatar(name, store.avatarKey(c), "md", store.isOnline(store.partner(c)?.id), store.avatarUrl(c)),
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
  store.on("presence", draw);
  store.on("me", drawMe);
  store.on("status", (status) => {
    pill.dataset.status = status;
    pill.textContent = STATUS_TEXT[status] ?? status;
  });
  pill.textContent = STATUS_TEXT[store.status];
  drawMe();
  draw();
  return node;
}

// An image or a file message in the list: what it carries, then its caption.
function mediaPreview(m) {
  if (!m.media) return null;
  const what = m.type === "image" ? "Photo" : m.media.name;
  return h("span", { class: "preview-media" }, icon(m.type === "image" ? "image" : "file", 14), ` ${m.content ? `${what} · ${m.content}` : what}`);
}
