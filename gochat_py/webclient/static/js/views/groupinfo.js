// A group's info panel, opened from the chat header: its picture, name and description
// (changed in place by its owner or an admin), its members (views/members.js), and the
// ways out: leaving (an owner is told who takes the group over) and, for the owner,
// deleting it with its history. Kept live: a change on any member's device redraws it,
// and it closes when the group is gone for me.
import { h, replaceChildren } from "../dom.js";
import { avatar } from "../format.js";
import * as groups from "../groups.js";
import { icon } from "../icons.js";
import { failureInWords } from "../refusals.js";
import { store } from "../store.js";
import { confirmAction } from "./confirm.js";
import { createMemberList } from "./members.js";
import { picturePicker } from "./picture.js";

const MANAGERS = new Set(["owner", "admin"]);
// The server's bounds (postgres/conversations.py GroupName, Description).
const NAME_MAX = 100;
const DESCRIPTION_MAX = 500;

// `onGone(id)`: the group ended for me from this panel (left or deleted).
export function openGroupInfo(id, { onGone }) {
  const error = h("p", { class: "form-error", role: "alert" });
  const say = (text) => {
    error.textContent = text;
  };
  const members = createMemberList(id, { say });
  const card = h("section", { class: "group-card" });
  const about = h("section", { class: "group-about" });
  const membersTitle = h("h3", { class: "section-title" });
  const leave = h("button", { class: "danger-row", type: "button", "data-action": "leave-group", onclick: leaveGroup }, icon("logout", 18), "Leave group");
  const remove = h("button", { class: "danger-row", type: "button", "data-action": "delete-group", onclick: deleteGroup }, icon("trash", 18), "Delete group");
  const dialog = h(
    "dialog",
    { class: "dialog side group-info", "aria-label": "Group info" },
    h("header", { class: "dialog-header" }, h("h2", { text: "Group info" }), h("button", { type: "button", class: "icon-button", "aria-label": "Close", onclick: () => dialog.close() }, icon("close"))),
    h("div", { class: "group-info-body" }, card, about, h("section", { class: "group-members" }, membersTitle, members.node), error),
    h("footer", { class: "group-exits" }, leave, remove),
  );
  let editing = null; // "name" | "description": the field being edited in place
  const setPicture = (mediaId) => groups.update(id, { avatar_media_id: mediaId });
  const picture = picturePicker({ label: "Change group photo", action: "change-group-avatar", use: (media) => setPicture(media.id), clear: () => setPicture(null) });

  function draw() {
    const c = store.conversations.get(id);
    if (!c) return dialog.close();
    const manager = MANAGERS.has(store.myRole(c));
    const name = store.displayName(c);
    membersTitle.textContent = `${c.participants.length} member${c.participants.length === 1 ? "" : "s"}`;
    members.draw();
    remove.hidden = store.myRole(c) !== "owner";
    // The section being edited is left as it is: a redraw must not take the text being
    // written, or the caret. Saving it then says whether the change is still allowed.
    if (editing !== "name") drawCard(c, name, manager);
    if (editing !== "description") drawAbout(c, manager);
  }

  function drawCard(c, name, manager) {
    picture.show(Boolean(c.avatar_url));
    replaceChildren(
      card,
      avatar(name, store.avatarKey(c), "xl", false, store.avatarUrl(c)),
      manager ? picture.node : null,
      editing === "name"
        ? editor("name", c.name ?? "", h("input", { name: "group-name", maxlength: String(NAME_MAX), required: true, "aria-label": "Group name" }))
        : h(
            "div",
            { class: "group-name-row" },
            h("h3", { class: "group-name", text: name }),
            manager ? editButton("edit-name", "Edit name", () => edit("name")) : null,
          ),
      h("p", { class: "group-meta muted", text: `Group · ${c.participants.length} member${c.participants.length === 1 ? "" : "s"}` }),
    );
  }

  function drawAbout(c, manager) {
    let text;
    if (editing === "description") {
      text = editor("description", c.description ?? "", h("textarea", { name: "group-description", rows: "3", maxlength: String(DESCRIPTION_MAX), "aria-label": "Group description", placeholder: "What is this group about?" }));
    } else if (c.description) {
      text = h("p", { class: "group-description", text: c.description });
    } else {
      text = h("p", { class: "group-description empty muted", text: manager ? "Add a description so members know what the group is for." : "No description." });
    }
    replaceChildren(
      about,
      h("div", { class: "section-head" }, h("h3", { class: "section-title", text: "Description" }), manager && editing !== "description" ? editButton("edit-description", "Edit description", () => edit("description")) : null),
      text,
    );
  }

  function editButton(action, label, onclick) {
    return h("button", { class: "icon-button small", type: "button", title: label, "aria-label": label, "data-action": action, onclick }, icon("edit", 16));
  }

  function edit(field) {
    const c = store.conversations.get(id);
    editing = field;
    say("");
    if (field === "name") drawCard(c, store.displayName(c), true);
    else drawAbout(c, true);
    const input = card.querySelector("input") ?? about.querySelector("textarea");
    input?.focus();
    input?.select();
  }

  // The field in place of the text: Enter (Ctrl+Enter in the description) saves, Escape
  // gives up.
  function editor(field, value, input) {
    input.value = value;
    const form = h(
      "form",
      { class: `inline-edit edit-${field}`, onsubmit: (event) => (event.preventDefault(), save(field, input.value)) },
      input,
      h(
        "div",
        { class: "editor-buttons" },
        h("button", { class: "link-button plain", type: "button", text: "Cancel", "data-action": "cancel-edit", onclick: stop }),
        h("button", { class: "button small primary", type: "submit", text: "Save", "data-action": "save-edit" }),
      ),
    );
    input.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        event.preventDefault(); // keeps the panel open
        stop();
      } else if (event.key === "Enter" && input.tagName === "TEXTAREA" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        save(field, input.value);
      }
    });
    return form;
  }

  function stop() {
    editing = null;
    draw();
  }


  async function save(field, value) {
    const c = store.conversations.get(id);
    const text = value.trim();
    if (text === ((field === "name" ? c?.name : c?.description) ?? "")) return stop();
    say("");
    try {
      // A blank description clears it; a blank name the server refuses, in words.
      await groups.update(id, { [field]: field === "description" ? text || null : text });
      // The other field may have been opened meanwhile: it stays open.
      if (editing === field) stop();
    } catch (e) {
      say(failureInWords(e));
    }
  }

  // Leaving or deleting: asked first, then the panel closes and the chat lets go of it.
  async function exit(ask, run) {
    const c = store.conversations.get(id);
    if (!c || !(await confirmAction(ask(c)))) return;
    try {
      await run(id);
      dialog.close();
      onGone(id);
    } catch (e) {
      say(failureInWords(e));
    }
  }

  function leaveGroup() {
    const ask = (c) => ({ title: `Leave "${store.displayName(c)}"?`, text: leavingText(c), action: "Leave" });
    return exit(ask, groups.leave);
  }

  function deleteGroup() {
    const ask = (c) => ({
      title: `Delete "${store.displayName(c)}"?`,
      text: "The group and its whole history will be deleted for every member. This cannot be undone.",
      action: "Delete group",
    });
    return exit(ask, groups.deleteGroup);
  }

  const redraw = () => draw();
  store.on("conversations", redraw);
  store.on("presence", redraw);
  dialog.addEventListener("cancel", (event) => {
    // Escape in a field being edited ends the editing, not the panel.
    if (editing) event.preventDefault();
  });
  dialog.addEventListener("close", () => {
    store.off("conversations", redraw);
    store.off("presence", redraw);
    dialog.remove();
  });
  document.body.append(dialog);
  draw();
  dialog.showModal();
}

// What leaving means for me: an owner hands the group over (the server's choice, told
// here by name), the last member ends it.
function leavingText(c) {
  if (store.myRole(c) !== "owner") return "You will stop getting its messages. Someone in the group can add you back.";
  const next = groups.successor(c);
  if (!next) return "You are its last member: the group and its history will be deleted.";
  const who = store.nameOf(next);
  return `${who} will become the owner (${next.role === "admin" ? "its longest-standing admin" : "its longest-standing member"}). You will stop getting its messages.`;
}
