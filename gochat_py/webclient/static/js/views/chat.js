// The right pane: the open conversation. Header (a click opens its info), messages (day
// separators, the group's own events as centred lines, bubbles with their actions, my
// sends pending until acknowledged, read marks under my latest), typing line, composer.
// Scrolling to the top loads older pages. A conversation lost while open (deleted, left,
// removed from) shows a notice in place of its timeline.
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
// A lost conversation's notice, by how it was lost: [headline, detail]; `by`: who did it.
const GONE_TEXT = {
  deleted: (by) => [by?.me ? "You deleted this group" : `${by?.name ?? "The owner"} deleted this group`, "Its messages are gone for every member."],
  removed: (by) => [`${by?.name ?? "An admin"} removed you from this group`, "You can no longer read or send messages here."],
  left: () => ["You left this group", "You no longer get its messages. A member can add you back."],
  unavailable: () => ["This conversation is no longer available", "It was deleted, or you are no longer a member."],
};
export function createChat({ onBack, onMembers }) {
  const title = h("span", { class: "chat-title", role: "heading", "aria-level": "2" });
  const subtitle = h("span", { class: "chat-subtitle" });
  const headAvatar = h("span", { class: "chat-avatar" });
  const membersButton = h("button", { class: "icon-button", type: "button", title: "Members", "aria-label": "Members", "data-action": "members", onclick: () => onMembers(store.activeId) }, icon("users"));
  const gone = h("div", { class: "chat-gone", role: "status", hidden: true });
  const infoButton = h(
    "button",
    { class: "chat-info", type: "button", title: "Conversation info", "data-action": "info", onclick: () => onMembers(store.activeId) },
    headAvatar,
    h("span", { class: "chat-heading" }, title, subtitle),
  );
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
  let flashing = null; // the message a quote's click lit up, kept lit across redraws

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
      infoButton,
      membersButton,
    ),
    scroller,
    typingLine,
    composer.node,
    gone,
  );
  const node = h("div", { class: "chat-pane" }, placeholder, pane);

  // A file dropped anywhere on the open conversation is attached, as the paperclip does.
  const carriesFiles = (event) => event.dataTransfer?.types.includes("Files");
  pane.addEventListener("dragover", (event) => {
    if (!carriesFiles(event) || !gone.hidden) return;
    event.preventDefault();
    pane.classList.add("dropping");
  });
  pane.addEventListener("dragleave", (event) => {
    if (!pane.contains(event.relatedTarget)) pane.classList.remove("dropping");
  });
  pane.addEventListener("drop", (event) => {
    pane.classList.remove("dropping");
    const [file] = event.dataTransfer?.files ?? [];
    if (!file || !gone.hidden) return;
    event.preventDefault();
    composer.attach(file);
  });

  scroller.addEventListener("scroll", () => {
    if (scroller.scrollTop < LOAD_OLDER_WITHIN_PX) loadOlder();
  });

  // Show the message a quote names, if it is loaded, and light it up for a moment.
  function jump(messageId) {
    const target = list.querySelector(`[data-id="${CSS.escape(messageId)}"]`);
    if (!target) return;
    target.scrollIntoView({ block: "center", behavior: "smooth" });
    target.classList.add("flash");
    flashing = messageId;
    setTimeout(() => {
      if (flashing === messageId) flashing = null;
      list.querySelector(`[data-id="${CSS.escape(messageId)}"]`)?.classList.remove("flash");
    }, FLASH_MS);
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
    replaceChildren(headAvatar, avatar(name, store.avatarKey(c), "md", state?.status === "online", store.avatarUrl(c)));
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
    if (flashing) list.querySelector(`[data-id="${CSS.escape(flashing)}"]`)?.classList.add("flash");
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

  // The notice of a conversation lost while open, in place of the timeline and composer.
  function showGone(id) {
    const { name, how, by } = store.gone.get(id);
    const [headline, detail] = GONE_TEXT[how](by);
    placeholder.hidden = true;
    pane.hidden = false;
    setLive(false);
    title.textContent = name;
    subtitle.textContent = "No longer available";
    subtitle.className = "chat-subtitle";
    replaceChildren(headAvatar, avatar(name || "?", id, "md"));
    replaceChildren(
      gone,
      h("span", { class: "gone-icon" }, icon(how === "deleted" ? "trash" : how === "unavailable" ? "ban" : "logout", 28)),
      h("h3", { class: "gone-title", text: headline }),
      h("p", { class: "muted", text: detail }),
      h("button", { class: "button", type: "button", text: "Close", "data-action": "close-gone", onclick: onBack }),
    );
    gone.dataset.how = how;
  }

  // The timeline and composer, or the notice that took their place.
  function setLive(live) {
    for (const part of [scroller, typingLine, composer.node, membersButton]) part.hidden = !live;
    infoButton.disabled = !live;
    gone.hidden = live;
  }

  async function show(id) {
    const c = store.conversations.get(id);
    if (!c && store.gone.has(id)) return showGone(id);
    placeholder.hidden = Boolean(c);
    pane.hidden = !c;
    if (!c) return;
    setLive(true);
    list.dataset.firstSeq = "";
    changes.reset();
    menuOpen = null;
    flashing = null;
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
    if (!store.conversations.has(store.activeId)) return show(store.activeId);
    drawHeader();
  });

  return { node, show };
}
