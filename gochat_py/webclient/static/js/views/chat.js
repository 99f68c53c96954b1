// The right pane: the open conversation. Header, messages (day separators, the group's
// own events as centred lines, bubbles with their actions, my sends pending until
// acknowledged, read marks under my latest), typing line, composer. Scrolling to the top
// loads older pages.
import { h, replaceChildren } from "../dom.js";
import { icon } from "../icons.js";
import { avatar, dayLabel, lastSeen, listOfNames, sameDay } from "../format.js";
import * as receipts from "../receipts.js";
import { store } from "../store.js";
import * as sync from "../sync.js";
import { messageItem } from "./bubble.js";
import { createChanges } from "./changes.js";
import { createComposer } from "./composer.js";

// Within this many pixels of the top, the next older page is fetched.
const LOAD_OLDER_WITHIN_PX = 120;
// Within this many pixels of the bottom, the view follows new messages.
const STICK_WITHIN_PX = 80;
// Consecutive messages of one sender closer than this are drawn as one group.
const GROUP_GAP_MS = 5 * 60 * 1000;
// How long the original of a clicked quote stays lit.
const FLASH_MS = 1_600;
export function createChat({ onBack, onMembers }) {
  const title = h("h2", { class: "chat-title" });
  const subtitle = h("p", { class: "chat-subtitle" });
  const headAvatar = h("span", { class: "chat-avatar" });
  const scroller = h("div", { class: "messages", role: "log", "aria-live": "polite" });
  const older = h("div", { class: "older", "aria-hidden": "true" });
  const list = h("ol", { class: "message-list" });
  scroller.append(older, list);
  const typingLine = h("div", { class: "typing-line", "aria-live": "polite" });
  const composer = createComposer({
    onSent: () => {
      scroller.scrollTop = scroller.scrollHeight;
    },
  });
  const changes = createChanges({ redraw: () => drawMessages(), done: () => composer.focus() });
  let menuOpen = null; // the message whose actions a tap opened

  const actions = {
    reply: (m) => {
      menuOpen = null;
      composer.reply(m);
      drawMessages();
    },
    edit: (m) => {
      menuOpen = null;
      changes.edit(m);
    },
    remove: (m) => {
      menuOpen = null;
      changes.remove(store.conversations.get(store.activeId), m);
    },
    jump,
    toggle: (id) => {
      menuOpen = menuOpen === id ? null : id;
      drawMessages();
    },
  };
  const placeholder = h(
    "div",
    { class: "chat-placeholder" },
    h("img", { src: "/client/img/icon.svg", alt: "", width: "72", height: "72" }),
    h("h2", { text: "Pick a conversation" }),
    h("p", { text: "Or start a new one with the + button." }),
  );
  const pane = h(
    "section",
    { class: "chat", hidden: true },
    h(
      "header",
      { class: "chat-header" },
      h("button", { class: "icon-button back", type: "button", "aria-label": "Back", onclick: onBack }, icon("back", 24)),
      headAvatar,
      h("div", { class: "chat-heading" }, title, subtitle),
      h("button", { class: "icon-button", type: "button", title: "Members", "aria-label": "Members", "data-action": "members", onclick: () => onMembers(store.activeId) }, icon("users")),
    ),
    scroller,
    typingLine,
    composer.node,
  );
  const node = h("div", { class: "chat-pane" }, placeholder, pane);

  scroller.addEventListener("scroll", () => {
    if (scroller.scrollTop < LOAD_OLDER_WITHIN_PX) loadOlder();
  });

  // Show the message a quote names, if it is loaded, and light it up for a moment.
  function jump(messageId) {
    const target = list.querySelector(`[data-id="${CSS.escape(messageId)}"]`);
    if (!target) return;
    target.scrollIntoView({ block: "center", behavior: "smooth" });
    target.classList.add("flash");
    setTimeout(() => target.classList.remove("flash"), FLASH_MS);
  }

  async function loadOlder() {
    const id = store.activeId;
    const thread = store.thread(id);
    if (!thread.hasOlder || thread.loadingOlder) return;
    older.textContent = "Loading older messages…";
    await sync.loadOlder(id).catch(() => {});
  }

  function drawHeader() {
    const c = store.conversations.get(store.activeId);
    if (!c) return;
    const name = store.displayName(c);
    title.textContent = name;
    const partner = store.partner(c);
    const state = partner && store.presence.get(partner.id);
    replaceChildren(headAvatar, avatar(name, store.avatarKey(c), "md", state?.status === "online"));
    const typists = store.typists(c.id);
    typingLine.textContent = typists.length ? `${listOfNames(typists)} ${typists.length > 1 ? "are" : "is"} typing…` : "";
    typingLine.classList.toggle("visible", typists.length > 0);
    subtitle.classList.toggle("typing", typists.length > 0);
    if (typists.length) {
      subtitle.textContent = c.type === "group" ? `${listOfNames(typists)} typing…` : "typing…";
    } else if (c.type === "group") {
      subtitle.textContent = `${c.participants.length} members · ${c.participants.map((p) => p.username).join(", ")}`;
    } else if (state) {
      subtitle.textContent = state.status === "online" ? "online" : lastSeen(state.last_seen_at);
    } else {
      subtitle.textContent = "Direct message";
    }
    subtitle.classList.toggle("online", !typists.length && state?.status === "online");
  }

  // The whole list is redrawn from the store: a few hundred nodes at most, and no drawn
  // state can drift from the store. Scroll position is kept relative to the bottom when
  // older messages are prepended, and follows new ones when the reader was at the bottom.
  function drawMessages() {
    const id = store.activeId;
    const c = store.conversations.get(id);
    if (!c) return;
    const thread = store.thread(id);
    const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < STICK_WITHIN_PX;
    const fromBottom = scroller.scrollHeight - scroller.scrollTop;
    const firstBefore = list.dataset.firstSeq;

    const items = [];
    let previous = null;
    const all = [...thread.ordered, ...thread.pending.values()];
    const lastMine = [...thread.ordered].reverse().find((m) => m.sender_id === store.me.id && m.type !== "system" && !m.deleted);
    // Redrawing must not take the caret away from the editor.
    const editorHadFocus = document.activeElement?.classList.contains("edit-input");
    let lastDay = null;
    for (const m of all) {
      if (!lastDay || !sameDay(lastDay, m.sent_at)) {
        items.push(h("li", { class: "day" }, h("span", { text: dayLabel(m.sent_at) })));
        lastDay = m.sent_at;
        previous = null;
      }
      if (m.type === "system") {
        items.push(h("li", { class: "system", text: m.content }));
        previous = null;
        continue;
      }
      const continued = previous && previous.sender_id === m.sender_id && m.sent_at - previous.sent_at < GROUP_GAP_MS;
      items.push(
        messageItem(c, m, {
          continued,
          readText: m === lastMine ? readers(c, m) : null,
          editor: changes.isEditing(m) ? changes.editor(c) : null,
          error: m.id ? changes.errorOf(m.id) : null,
          actions,
          menuOpen: Boolean(m.id) && m.id === menuOpen,
        }),
      );
      previous = m;
    }
    replaceChildren(list, items);
    changes.focus(list, editorHadFocus);
    list.dataset.firstSeq = String(thread.firstSeq);

    older.textContent = thread.hasOlder ? "" : thread.loaded && thread.ordered.length ? "This is the beginning of the conversation" : "";
    older.classList.toggle("start", !thread.hasOlder);
    if (!thread.loaded) older.textContent = "Loading…";

    if (firstBefore && firstBefore !== list.dataset.firstSeq && !atBottom) {
      scroller.scrollTop = scroller.scrollHeight - fromBottom;
    } else if (atBottom || !firstBefore) {
      scroller.scrollTop = scroller.scrollHeight;
    }
    // A first page shorter than the pane cannot be scrolled up: fetch more now.
    if (thread.hasOlder && scroller.scrollHeight <= scroller.clientHeight + LOAD_OLDER_WITHIN_PX) loadOlder();
  }

  function readers(c, m) {
    const marks = store.readBy.get(c.id);
    if (!marks) return null;
    const ids = [...marks.entries()].filter(([, seq]) => seq >= m.seq).map(([user]) => user);
    if (!ids.length) return null;
    if (c.type === "direct") return "Read";
    const names = ids.map((u) => c.participants.find((p) => p.id === u)?.username ?? "someone");
    return `Seen by ${listOfNames(names)}`;
  }

  async function show(id) {
    const c = store.conversations.get(id);
    placeholder.hidden = Boolean(c);
    pane.hidden = !c;
    if (!c) return;
    list.dataset.firstSeq = "";
    changes.reset();
    menuOpen = null;
    composer.reset();
    replaceChildren(list);
    drawHeader();
    drawMessages();
    composer.focus();
    const thread = store.thread(id);
    try {
      if (thread.loaded) await sync.catchUp(id);
      else await sync.loadNewest(id);
    } catch {
      older.textContent = "Could not load messages";
    }
    receipts.loadReceipts(id).catch(() => {});
    sync.markRead(id);
  }

  store.on("thread", (id) => {
    if (id === store.activeId) drawMessages();
  });
  store.on("typing", (id) => {
    if (id === store.activeId) drawHeader();
  });
  store.on("presence", () => {
    if (store.activeId) drawHeader();
  });
  store.on("conversations", () => {
    if (!store.activeId) return;
    if (!store.conversations.has(store.activeId)) return show(null);
    drawHeader();
  });

  return { node, show };
}
