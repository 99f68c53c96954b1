// The composer under the open conversation: a text field that grows, Enter to send
// (Shift+Enter for a new line), the message being replied to above it, and after an "@"
// the members' usernames to pick from.
import { h, replaceChildren } from "../dom.js";
import { icon } from "../icons.js";
import { store } from "../store.js";
import * as sync from "../sync.js";

const MAX_HEIGHT_PX = 160;
const SUGGESTIONS_MAX = 6;
// The "@name" being typed, right before the caret.
const MENTION_AT_CARET = /(?:^|\s)@([\w.-]*)$/;

export function createComposer({ onSent }) {
  let replyTo = null;
  let suggestions = [];
  let chosen = 0;
  const input = h("textarea", { class: "composer-input", rows: "1", placeholder: "Write a message…", "aria-label": "Message", maxlength: "4000" });
  const sendButton = h("button", { class: "send-button", type: "submit", "aria-label": "Send", title: "Send" }, icon("send"));
  const replyBar = h("div", { class: "reply-bar", hidden: true });
  const suggestionList = h("ul", { class: "mention-suggestions", role: "listbox", hidden: true });
  const form = h("form", { class: "composer", onsubmit: submit }, input, sendButton);
  const node = h("div", { class: "composer-wrap" }, suggestionList, replyBar, form);

  input.addEventListener("keydown", (event) => {
    if (!suggestionList.hidden && keyInSuggestions(event)) return;
    if (event.key === "Escape" && replyTo) return reply(null);
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit(event);
    }
  });
  input.addEventListener("input", () => {
    grow();
    suggest();
    if (input.value.trim() && store.activeId) sync.typing(store.activeId);
  });
  // Focus gone elsewhere in the page closes the list; the window losing focus does not.
  input.addEventListener("blur", () =>
    setTimeout(() => {
      if (document.activeElement !== input) showSuggestions([]);
    }, 150),
  );

  function grow() {
    input.style.height = "auto";
    input.style.height = `${Math.min(input.scrollHeight, MAX_HEIGHT_PX)}px`;
  }

  function submit(event) {
    event.preventDefault();
    if (!store.activeId || !input.value.trim()) return;
    sync.send(store.activeId, input.value, replyTo);
    input.value = "";
    reply(null);
    showSuggestions([]);
    grow();
    input.focus();
    onSent();
  }

  // Reply to `message` (null: to nothing).
  function reply(message) {
    replyTo = message;
    replyBar.hidden = !message;
    if (message) {
      const who = message.sender_id === store.me.id ? "You" : message.sender_username;
      replaceChildren(
        replyBar,
        icon("reply", 16),
        h("div", { class: "reply-bar-body" }, h("span", { class: "quote-sender", text: `Replying to ${who}` }), h("span", { class: "quote-text", text: message.content })),
        h("button", { type: "button", class: "icon-button", "aria-label": "Cancel reply", title: "Cancel reply", "data-action": "cancel-reply", onclick: () => reply(null) }, icon("close", 16)),
      );
      input.focus();
    }
  }

  function suggest() {
    const typed = input.value.slice(0, input.selectionStart).match(MENTION_AT_CARET);
    const c = store.conversations.get(store.activeId);
    if (!typed || !c) return showSuggestions([]);
    const prefix = typed[1].toLowerCase();
    showSuggestions(
      c.participants
        .filter((p) => p.id !== store.me.id && p.username.toLowerCase().startsWith(prefix))
        .slice(0, SUGGESTIONS_MAX),
    );
  }

  function showSuggestions(people) {
    suggestions = people;
    chosen = 0;
    suggestionList.hidden = people.length === 0;
    drawSuggestions();
  }

  function drawSuggestions() {
    replaceChildren(
      suggestionList,
      suggestions.map((p, i) =>
        h(
          "li",
          { role: "option", "aria-selected": String(i === chosen) },
          h("button", { type: "button", class: `suggestion${i === chosen ? " chosen" : ""}`, "data-username": p.username, onmousedown: (event) => event.preventDefault(), onclick: () => complete(p.username) }, h("strong", { text: `@${p.username}` }), store.nameOf(p) !== p.username ? h("span", { class: "muted", text: ` ${store.nameOf(p)}` }) : null),
        ),
      ),
    );
  }

  // Arrows move through the usernames, Enter or Tab takes one, Escape closes the list.
  function keyInSuggestions(event) {
    const moves = { ArrowDown: 1, ArrowUp: -1 };
    if (event.key in moves) {
      chosen = (chosen + moves[event.key] + suggestions.length) % suggestions.length;
      drawSuggestions();
    } else if (event.key === "Enter" || event.key === "Tab") {
      complete(suggestions[chosen].username);
    } else if (event.key === "Escape") {
      showSuggestions([]);
    } else {
      return false;
    }
    event.preventDefault();
    return true;
  }

  function complete(username) {
    const caret = input.selectionStart;
    const before = input.value.slice(0, caret).replace(/@[\w.-]*$/, `@${username} `);
    input.value = before + input.value.slice(caret);
    input.setSelectionRange(before.length, before.length);
    showSuggestions([]);
    input.focus();
  }

  // Another conversation: no reply or half-typed mention carries over.
  function reset() {
    reply(null);
    showSuggestions([]);
  }

  return { node, input, reply, reset, focus: () => input.focus() };
}
