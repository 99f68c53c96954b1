// The composer under the open conversation: a text field that grows, Enter to send
// (Shift+Enter for a new line), the message being replied to above it, after an "@" the
// members' usernames to pick from, and a file attached (the paperclip, a drop on the
// conversation, a pasted image) uploading above it with its progress, sent with the text
// as its caption.
import { h, replaceChildren } from "../dom.js";
import { icon } from "../icons.js";
import { fileSize, isImage, upload, uploadRefusal } from "../media.js";
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
  let attached = null; // {file, progress, media, error, done, controller}: the file being sent
  const input = h("textarea", { class: "composer-input", rows: "1", placeholder: "Write a message…", "aria-label": "Message", maxlength: "4000" });
  const sendButton = h("button", { class: "send-button", type: "submit", "aria-label": "Send", title: "Send" }, icon("send"));
  const replyBar = h("div", { class: "reply-bar", hidden: true });
  const suggestionList = h("ul", { class: "mention-suggestions", role: "listbox", hidden: true });
  const fileInput = h("input", { type: "file", hidden: true, "data-action": "attach-file", onchange: chosenFile });
  const attachButton = h("button", { class: "icon-button attach-button", type: "button", title: "Attach a file", "aria-label": "Attach a file", "data-action": "attach", onclick: () => fileInput.click() }, icon("paperclip"));
  const attachmentBar = h("div", { class: "attachment-bar", hidden: true });
  const form = h("form", { class: "composer", onsubmit: submit }, attachButton, fileInput, input, sendButton);
  const node = h("div", { class: "composer-wrap" }, suggestionList, replyBar, attachmentBar, form);

  input.addEventListener("keydown", (event) => {
    if (!suggestionList.hidden && keyInSuggestions(event)) return;
    if (event.key === "Escape" && replyTo) return reply(null);
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit(event);
    }
  });
  // A pasted image (a screenshot, say) is attached; pasted text stays text.
  input.addEventListener("paste", (event) => {
    const [file] = event.clipboardData?.files ?? [];
    if (!file) return;
    event.preventDefault();
    attach(file);
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

  async function submit(event) {
    event.preventDefault();
    const id = store.activeId;
    const sending = attached;
    if (!id || (!sending && !input.value.trim()) || sending?.error) return;
    const caption = input.value;
    const answering = replyTo;
    input.value = "";
    reply(null);
    showSuggestions([]);
    grow();
    input.focus();
    if (!sending) {
      sync.send(id, caption, answering);
      return onSent();
    }
    // Sent once its upload is done: Enter during the upload need not be pressed again.
    sending.sendWhenDone = true;
    drawAttachment();
    const media = await sending.done;
    if (attached !== sending) return;
    if (!media) {
      // Refused: the caption comes back, to send without the file or with another.
      if (!input.value) input.value = caption;
      return;
    }
    sync.send(id, caption, answering, media);
    clearAttachment();
    onSent();
  }

  function chosenFile() {
    const [file] = fileInput.files;
    fileInput.value = "";
    if (file) attach(file);
  }

  // Upload `file` at once; the bar above the field shows how far it is.
  function attach(file) {
    clearAttachment();
    const sending = { file, progress: 0, media: null, error: null, sendWhenDone: false, controller: new AbortController() };
    const onProgress = (fraction) => {
      sending.progress = fraction;
      if (attached === sending) drawProgress(fraction);
    };
    sending.done = upload(file, { onProgress, signal: sending.controller.signal }).then(
      (media) => {
        sending.media = media;
        if (attached === sending) drawAttachment();
        return media;
      },
      (error) => {
        if (error.name === "AbortError") return null;
        sending.error = uploadRefusal(error);
        if (attached === sending) drawAttachment();
        return null;
      },
    );
    attached = sending;
    drawAttachment();
    input.focus();
  }

  function clearAttachment() {
    attached?.controller.abort();
    attached = null;
    drawAttachment();
  }

  function drawProgress(fraction) {
    const bar = attachmentBar.querySelector("progress");
    if (bar) bar.value = fraction;
  }

  function drawAttachment() {
    attachmentBar.hidden = !attached;
    input.placeholder = attached ? "Add a caption…" : "Write a message…";
    if (!attached) return replaceChildren(attachmentBar);
    const { file, media, error, progress, sendWhenDone } = attached;
    const state = error ? "failed" : media ? "ready" : "uploading";
    let status;
    if (error) status = h("span", { class: "attachment-error", role: "alert", text: error });
    else if (media) status = h("span", { class: "muted", text: `${fileSize(media.size)} · add a caption or send it` });
    else status = h("span", { class: "attachment-uploading" }, h("progress", { class: "attachment-progress", max: "1", value: String(progress), "aria-label": "Upload progress" }), h("span", { class: "muted", text: sendWhenDone ? "Sending when uploaded…" : `Uploading ${fileSize(file.size)}…` }));
    replaceChildren(
      attachmentBar,
      isImage(media) ? h("img", { class: "attachment-preview", src: media.thumbnail_url, alt: "" }) : h("span", { class: "attachment-preview" }, icon(file.type.startsWith("image/") ? "image" : "file")),
      h("div", { class: "attachment-body", "data-state": state }, h("span", { class: "attachment-name", text: file.name || "Pasted image" }), status),
      h("button", { type: "button", class: "icon-button", title: "Remove the file", "aria-label": "Remove the file", "data-action": "remove-attachment", onclick: clearAttachment }, icon("close", 16)),
    );
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

  // Another conversation: no reply, half-typed mention or attached file carries over.
  function reset() {
    reply(null);
    showSuggestions([]);
    clearAttachment();
  }

  return { node, input, reply, reset, attach, focus: () => input.focus() };
}
