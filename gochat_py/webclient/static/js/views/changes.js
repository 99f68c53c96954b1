// Changing a message already sent, from the open conversation: editing it in place (Enter
// saves, Escape cancels) and deleting it after asking. A refused change is kept, in words,
// to show under the message until the next try.
import { h } from "../dom.js";
import { failureInWords } from "../refusals.js";
import { store } from "../store.js";
import * as sync from "../sync.js";
import { confirmAction } from "./confirm.js";

// Refused edits and deletes in words (the codes of PATCH and DELETE …/messages/{id}).
const REFUSALS = {
  not_the_sender: "Only its sender (or a group's owner or admin, to delete) can change this message.",
  message_deleted: "This message was deleted.",
  message_not_found: "This message no longer exists.",
  system_message: "Group events cannot be changed.",
  empty_content: "A message cannot be empty.",
};

function inWords(error, c) {
  return failureInWords(error, store.displayName(c), REFUSALS);
}

// `redraw`: draw the messages again; `done`: editing ended (the composer takes the focus).
export function createChanges({ redraw, done }) {
  let editing = null; // {id, draft, fresh}: the message being edited, its text so far
  const errors = new Map(); // message id → its last refusal, in words

  function edit(m) {
    editing = { id: m.id, draft: m.content, fresh: true };
    errors.delete(m.id);
    redraw();
  }

  function isEditing(m) {
    return Boolean(editing) && editing.id === m.id && !m.deleted;
  }

  // The editor that takes the text's place in the bubble.
  function editor(c) {
    const field = h("textarea", { class: "edit-input", rows: "2", maxlength: "4000", "aria-label": "Edit message" });
    field.value = editing.draft;
    field.addEventListener("input", () => {
      editing.draft = field.value;
    });
    field.addEventListener("keydown", (event) => {
      if (event.key === "Escape") stop();
      else if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        save(c);
      }
    });
    return h(
      "div",
      { class: "editor" },
      field,
      h(
        "div",
        { class: "editor-buttons" },
        h("button", { type: "button", class: "link-button plain", text: "Cancel", "data-action": "cancel-edit", onclick: stop }),
        h("button", { type: "button", class: "button small", text: "Save", "data-action": "save-edit", onclick: () => save(c) }),
      ),
    );
  }

  // After a redraw: the editor gets the caret when it just opened or had it before.
  function focus(list, hadFocus) {
    const field = list.querySelector(".edit-input");
    if (!field || !(hadFocus || editing.fresh)) return;
    editing.fresh = false;
    field.focus();
    field.setSelectionRange(field.value.length, field.value.length);
  }

  function stop() {
    editing = null;
    redraw();
    done();
  }

  async function save(c) {
    const { id, draft } = editing;
    const held = store.thread(c.id).byId.get(id);
    if (!draft.trim() || draft === held?.content) return stop();
    errors.delete(id);
    try {
      await sync.edit(c.id, id, draft);
      if (editing?.id === id) stop();
    } catch (error) {
      errors.set(id, inWords(error, c));
      redraw();
    }
  }

  async function remove(c, m) {
    const theirs = m.sender_id !== store.me.id;
    const ok = await confirmAction({
      title: "Delete message?",
      text: theirs ? `${m.sender_username}'s message will be deleted for everyone.` : "It will be deleted for everyone in this conversation.",
      action: "Delete",
    });
    if (!ok) return;
    errors.delete(m.id);
    try {
      await sync.remove(c.id, m.id);
    } catch (error) {
      errors.set(m.id, inWords(error, c));
      redraw();
    }
  }

  // Another conversation: nothing carries over.
  function reset() {
    editing = null;
    errors.clear();
  }

  return { edit, isEditing, editor, focus, remove, reset, errorOf: (id) => errors.get(id) };
}
