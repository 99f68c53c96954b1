// The bell in the sidebar's header: the unread count on it, and a panel under it listing
// my notifications in words, newest first, with "Mark all read".
import { h, replaceChildren } from "../dom.js";
import { icon } from "../icons.js";
import { ago, avatar } from "../format.js";
import * as people from "../people.js";
import { store } from "../store.js";

// A notification in words; null for a type this client does not know (later servers add some).
function line(n) {
  const who = n.actor ? store.nameOf(n.actor) : "Someone";
  const where = n.data?.conversation_name || "a group";
  switch (n.type) {
    case "contact_request":
      return `${who} wants to be your contact`;
    case "contact_accepted":
      return `${who} accepted your contact request`;
    case "added_to_conversation":
      return `${who} added you to ${where}`;
    case "removed_from_conversation":
      return `${who} removed you from ${where}`;
    case "mention": {
      const inGroup = n.data?.conversation_name ? ` in ${n.data.conversation_name}` : "";
      return `${who} mentioned you${inGroup}${n.data?.preview ? `: “${n.data.preview}”` : ""}`;
    }
    default:
      return null;
  }
}

export function createBell({ onOpenConversation, onOpenPeople }) {
  const badge = h("span", { class: "bell-badge", hidden: true });
  const button = h(
    "button",
    { class: "icon-button bell", type: "button", title: "Notifications", "aria-label": "Notifications", "aria-expanded": "false", "data-action": "notifications", onclick: toggle },
    icon("bell"),
    badge,
  );
  const list = h("ul", { class: "notification-list" });
  const markAll = h("button", { class: "link-button accent", type: "button", text: "Mark all read", "data-action": "mark-all-read", onclick: () => people.markNotificationsRead().catch(() => {}) });
  const panel = h(
    "div",
    { class: "notifications-panel", hidden: true, role: "dialog", "aria-label": "Notifications" },
    h("header", { class: "notifications-header" }, h("strong", { text: "Notifications" }), markAll),
    list,
  );
  const node = h("div", { class: "bell-wrap" }, button, panel);

  function toggle() {
    panel.hidden = !panel.hidden;
    button.setAttribute("aria-expanded", String(!panel.hidden));
    if (!panel.hidden) draw();
  }

  function follow(n) {
    panel.hidden = true;
    button.setAttribute("aria-expanded", "false");
    if (!n.read_at) people.markNotificationsRead([n.id]).catch(() => {});
    const opens = n.type === "added_to_conversation" || n.type === "mention";
    if (opens && n.data?.conversation_id) onOpenConversation(n.data.conversation_id);
    else if (n.type.startsWith("contact_")) onOpenPeople();
  }

  function draw() {
    const unread = store.unreadNotifications;
    badge.hidden = unread === 0;
    badge.textContent = unread > 99 ? "99+" : String(unread);
    button.classList.toggle("has-unread", unread > 0);
    markAll.disabled = unread === 0;
    if (panel.hidden) return;
    const items = store.notifications
      .map((n) => [n, line(n)])
      .filter(([, text]) => text)
      .map(([n, text]) =>
        h(
          "li",
          {},
          h(
            "button",
            { type: "button", class: `notification${n.read_at ? "" : " unread"}`, "data-type": n.type, onclick: () => follow(n) },
            avatar(n.actor ? store.nameOf(n.actor) : "?", n.actor?.id ?? n.id, "sm"),
            h("span", { class: "notification-body" }, h("span", { class: "notification-text", text }), h("time", { text: ago(n.created_at) })),
          ),
        ),
      );
    replaceChildren(list, items.length ? items : h("li", { class: "people-empty", text: "Nothing yet" }));
  }

  // A click anywhere else closes the panel; once signed out, the listener goes too.
  function outside(event) {
    if (!node.isConnected) return document.removeEventListener("click", outside);
    if (!panel.hidden && !node.contains(event.target)) {
      panel.hidden = true;
      button.setAttribute("aria-expanded", "false");
    }
  }
  document.addEventListener("click", outside);
  store.on("notifications", draw);
  draw();
  return node;
}
