// The right pane: the open conversation. Header, messages (day separators, bubbles, my
// sends pending until acknowledged, read marks under my latest), typing line, composer.
// Scrolling to the top loads older pages.
import { h, replaceChildren } from "../dom.js";
import { icon } from "../icons.js";
import { avatar, clock, dayLabel, hue, lastSeen, listOfNames, sameDay } from "../format.js";
import { isPeopleRefusal, refusal } from "../refusals.js";
import { store } from "../store.js";
import * as sync from "../sync.js";

// Within this many pixels of the top, the next older page is fetched.
const LOAD_OLDER_WITHIN_PX = 120;
// Within this many pixels of the bottom, the view follows new messages.
const STICK_WITHIN_PX = 80;
// Consecutive messages of one sender closer than this are drawn as one group.
const GROUP_GAP_MS = 5 * 60 * 1000;

export function createChat({ onBack, onMembers }) {
  const title = h("h2", { class: "chat-title" });
  const subtitle = h("p", { class: "chat-subtitle" });
  const headAvatar = h("span", { class: "chat-avatar" });
  const scroller = h("div", { class: "messages", role: "log", "aria-live": "polite" });
  const older = h("div", { class: "older", "aria-hidden": "true" });
  const list = h("ol", { class: "message-list" });
  scroller.append(older, list);
  const typingLine = h("div", { class: "typing-line", "aria-live": "polite" });
  const input = h("textarea", { class: "composer-input", rows: "1", placeholder: "Write a message…", "aria-label": "Message", maxlength: "4000" });
  const sendButton = h("button", { class: "send-button", type: "submit", "aria-label": "Send", title: "Send" }, icon("send"));
  const composer = h("form", { class: "composer", onsubmit: submit }, input, sendButton);
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
    composer,
  );
  const node = h("div", { class: "chat-pane" }, placeholder, pane);

  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit(event);
    }
  });
  input.addEventListener("input", () => {
    grow();
    if (input.value.trim() && store.activeId) sync.typing(store.activeId);
  });
  scroller.addEventListener("scroll", () => {
    if (scroller.scrollTop < LOAD_OLDER_WITHIN_PX) loadOlder();
  });

  function grow() {
    input.style.height = "auto";
    input.style.height = `${Math.min(input.scrollHeight, 160)}px`;
  }

  function submit(event) {
    event.preventDefault();
    if (!store.activeId || !input.value.trim()) return;
    sync.send(store.activeId, input.value);
    input.value = "";
    grow();
    input.focus();
    scroller.scrollTop = scroller.scrollHeight;
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
    const lastMine = [...thread.ordered].reverse().find((m) => m.sender_id === store.me.id);
    for (const m of all) {
      if (!previous || !sameDay(previous.sent_at, m.sent_at)) {
        items.push(h("li", { class: "day" }, h("span", { text: dayLabel(m.sent_at) })));
        previous = null;
      }
      if (m.type === "system") {
        items.push(h("li", { class: "system", text: m.content }));
        previous = null;
        continue;
      }
      const continued = previous && previous.sender_id === m.sender_id && m.sent_at - previous.sent_at < GROUP_GAP_MS;
      items.push(bubble(c, m, continued, m === lastMine ? readers(c, m) : null));
      previous = m;
    }
    replaceChildren(list, items);
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

  function bubble(c, m, continued, readText) {
    const mine = m.sender_id === store.me.id;
    const group = c.type === "group";
    const pending = m.state === "pending";
    const failed = m.state === "failed";
    let status = null;
    if (mine) {
      status = pending
        ? h("span", { class: "tick pending", title: "Sending", "aria-label": "Sending" }, icon("clock", 13))
        : failed
          ? null
          : h("span", { class: "tick", title: "Sent", "aria-label": "Sent" }, icon("check", 14));
    }
    return h(
      "li",
      {
        class: `message ${mine ? "mine" : "theirs"}${continued ? " continued" : ""}${pending ? " pending" : ""}${failed ? " failed" : ""}`,
        "data-id": m.id,
        "data-seq": m.seq,
        "data-client-id": m.client_msg_id,
      },
      !mine && group ? (continued ? h("span", { class: "avatar-space" }) : avatar(m.sender_username, m.sender_id, "sm")) : null,
      h(
        "div",
        { class: "bubble" },
        !mine && group && !continued ? h("span", { class: "sender", style: { "--hue": String(hue(m.sender_id)) }, text: m.sender_username }) : null,
        h("span", { class: "content", text: m.content }),
        h("span", { class: "meta" }, h("time", { text: clock(m.sent_at) }), status),
      ),
      failed && isPeopleRefusal(m.code)
        ? h("span", { class: "send-refused", role: "alert", "data-code": m.code }, `Not delivered. ${refusal(m.code, store.displayName(c))}`, h("button", { class: "link-button accent", type: "button", onclick: () => sync.retry(c.id, m.client_msg_id), text: "Try again" }))
        : failed
          ? h("button", { class: "retry", type: "button", onclick: () => sync.retry(c.id, m.client_msg_id) }, `Not sent${m.error ? ` (${m.error})` : ""} · Retry`)
          : null,
      readText ? h("span", { class: "read-receipt", text: readText }) : null,
    );
  }

  async function show(id) {
    const c = store.conversations.get(id);
    placeholder.hidden = Boolean(c);
    pane.hidden = !c;
    if (!c) return;
    list.dataset.firstSeq = "";
    replaceChildren(list);
    drawHeader();
    drawMessages();
    input.focus();
    const thread = store.thread(id);
    try {
      if (thread.loaded) await sync.catchUp(id);
      else await sync.loadNewest(id);
    } catch {
      older.textContent = "Could not load messages";
    }
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
