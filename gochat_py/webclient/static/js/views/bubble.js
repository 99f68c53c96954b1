// One message of the timeline: the bubble with its sender, the message it replies to, its
// text with mentions marked, an image's thumbnail or a file's card, "edited", the time and,
// on mine, the ticks; a tombstone once deleted; and the actions on it (reply, edit,
// delete), shown on hover or on a tap.
import { h } from "../dom.js";
import { avatar, clock, hue } from "../format.js";
import { icon } from "../icons.js";
import { fileSize } from "../media.js";
import * as receipts from "../receipts.js";
import { isPeopleRefusal, refusal } from "../refusals.js";
import { store } from "../store.js";
import * as sync from "../sync.js";
import { openImage } from "./lightbox.js";

const TICKS = {
  sent: ["check", "Sent"],
  delivered: ["checks", "Delivered"],
  read: ["checks", "Read"],
};
// An @name ends before a space or punctuation; a trailing dot or dash ends a sentence.
const MENTION = /(@[\w.-]*[\w])/;

// `actions`: {reply(m), edit(m), remove(m), jump(messageId), toggle(messageId)};
// `editor`: the inline editor when this message is being edited; `error`: a refused edit
// or delete, in words; `menuOpen`: its actions were tapped open.
export function messageItem(c, m, { continued, readText, editor, error, actions, menuOpen }) {
  const mine = m.sender_id === store.me.id;
  const group = c.type === "group";
  const pending = m.state === "pending";
  const failed = m.state === "failed";
  const mentioned = !m.deleted && Boolean(m.mentions?.includes(store.me.id));
  const classes = ["message", mine ? "mine" : "theirs"];
  if (continued) classes.push("continued");
  if (pending) classes.push("pending");
  if (failed) classes.push("failed");
  if (m.deleted) classes.push("deleted");
  if (mentioned) classes.push("mentioned");
  if (menuOpen) classes.push("show-actions");
  return h(
    "li",
    { class: classes.join(" "), "data-id": m.id, "data-seq": m.seq, "data-client-id": m.client_msg_id },
    !mine && group ? (continued ? h("span", { class: "avatar-space" }) : avatar(m.sender_username, m.sender_id, "sm", false, store.pictureOf(c, m.sender_id))) : null,
    h(
      "div",
      {
        class: m.media && !m.deleted ? "bubble has-media" : "bubble",
        // A tap shows the actions on screens without hover.
        onclick: (event) => {
          if (m.id && !event.target.closest("a, button, textarea")) actions.toggle(m.id);
        },
      },
      !mine && group && !continued ? h("span", { class: "sender", style: { "--hue": String(hue(m.sender_id)) }, text: m.sender_username }) : null,
      m.reply_to && !m.deleted ? quote(m.reply_to, actions.jump) : null,
      m.media && !m.deleted ? attachment(m) : null,
      m.deleted ? h("span", { class: "content tombstone" }, icon("ban", 14), "This message was deleted") : editor ?? (m.content || !m.media ? content(c, m.content) : null),
      h(
        "span",
        { class: "meta" },
        m.edited_at && !m.deleted ? h("span", { class: "edited", text: "edited" }) : null,
        h("time", { text: clock(m.sent_at) }),
        mine && !m.deleted ? tick(c, m) : null,
      ),
    ),
    m.id && !m.deleted && !editor ? menu(c, m, actions) : null,
    failed ? sendFailure(c, m) : null,
    error ? h("span", { class: "message-error", role: "alert", text: error }) : null,
    readText ? h("span", { class: "read-receipt", text: readText }) : null,
  );
}

// An image message's thumbnail (a click shows the whole image), or a file's card: its
// icon, name and size, a link that downloads it.
function attachment(m) {
  const media = m.media;
  if (m.type === "image" && media.thumbnail_url) {
    const box = media.width && media.height ? thumbnailBox(media.width, media.height) : {};
    return h(
      "button",
      { type: "button", class: "media-image", title: media.name, "aria-label": `Open image ${media.name}`, "data-action": "open-image", onclick: () => openImage(media, m.content) },
      h("img", { src: media.thumbnail_url, alt: media.name, ...box }),
    );
  }
  return h(
    "a",
    { class: "media-file", href: media.url, download: media.name, title: `Download ${media.name}`, "data-action": "download" },
    h("span", { class: "media-file-icon" }, icon("file", 22)),
    h("span", { class: "media-file-body" }, h("span", { class: "media-file-name", text: media.name }), h("span", { class: "media-file-size", text: fileSize(media.size) })),
    icon("download", 18),
  );
}

// The thumbnail's drawn size before it loads (the server's are THUMBNAIL_SIDE on their
// longest side at most), so the timeline does not jump when it arrives.
const THUMBNAIL_SIDE = 320;
function thumbnailBox(width, height) {
  const scale = Math.min(1, THUMBNAIL_SIDE / Math.max(width, height));
  return { width: String(Math.round(width * scale)), height: String(Math.round(height * scale)) };
}

// The message a reply answers, as it read then; a click shows the original.
function quote(q, jump) {
  return h(
    "button",
    { type: "button", class: "quote", "data-reply-to": q.id, style: { "--hue": String(hue(q.sender_id)) }, onclick: () => jump(q.id) },
    h("span", { class: "quote-sender", text: q.sender_id === store.me.id ? "You" : q.sender_username }),
    h("span", { class: "quote-text", text: q.deleted ? "This message was deleted" : q.content }),
  );
}

// The text, with each @username of a member drawn as a mention. Text nodes only.
function content(c, text) {
  const usernames = new Set(c.participants.map((p) => p.username.toLowerCase()));
  const parts = text.split(MENTION).map((part, i) =>
    i % 2 === 1 && usernames.has(part.slice(1).toLowerCase()) ? h("span", { class: "mention", text: part }) : part,
  );
  return h("span", { class: "content" }, ...parts);
}

function tick(c, m) {
  if (m.state === "failed") return null;
  if (m.state === "pending") return h("span", { class: "tick pending", title: "Sending", "aria-label": "Sending", "data-status": "pending" }, icon("clock", 13));
  const status = receipts.status(c, m);
  const [name, label] = TICKS[status];
  return h("span", { class: `tick ${status}`, title: label, "aria-label": label, "data-status": status }, icon(name, 16));
}

function menu(c, m, actions) {
  const mine = m.sender_id === store.me.id;
  const button = (action, label, run) =>
    h("button", { type: "button", class: "message-action", title: label, "aria-label": label, "data-action": action, onclick: () => run(m) }, icon(action === "delete" ? "trash" : action, 16));
  return h(
    "div",
    { class: "message-actions" },
    button("reply", "Reply", actions.reply),
    mine ? button("edit", "Edit", actions.edit) : null,
    store.canDelete(c, m) ? button("delete", "Delete", actions.remove) : null,
  );
}

function sendFailure(c, m) {
  if (isPeopleRefusal(m.code)) {
    return h(
      "span",
      { class: "send-refused", role: "alert", "data-code": m.code },
      `Not delivered. ${refusal(m.code, store.displayName(c))}`,
      h("button", { class: "link-button accent", type: "button", onclick: () => sync.retry(c.id, m.client_msg_id), text: "Try again" }),
    );
  }
  return h("button", { class: "retry", type: "button", onclick: () => sync.retry(c.id, m.client_msg_id) }, `Not sent${m.error ? ` (${m.error})` : ""} · Retry`);
}
