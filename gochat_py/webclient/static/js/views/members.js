// The members panel of a conversation: who is in it, adding people to a group, removing
// them (owner or admin), leaving.
import * as api from "../api.js";
import { h, replaceChildren } from "../dom.js";
import { icon } from "../icons.js";
import { avatar } from "../format.js";
import { store } from "../store.js";

const MANAGERS = new Set(["owner", "admin"]);

export function openMembers(id, { onChanged, onLeft }) {
  const error = h("p", { class: "form-error", role: "alert" });
  const list = h("ul", { class: "member-list" });
  const input = h("input", { name: "user-ids", placeholder: "User ids, separated by commas", autocomplete: "off" });
  const addForm = h(
    "form",
    { class: "add-member", onsubmit: add },
    input,
    h("button", { class: "button primary", type: "submit", text: "Add" }),
  );
  const leave = h("button", { class: "button danger wide", type: "button", text: "Leave group", onclick: () => remove(store.me.id) });
  const dialog = h(
    "dialog",
    { class: "dialog side", "aria-label": "Members" },
    h("header", { class: "dialog-header" }, h("h2", { text: "Members" }), h("button", { type: "button", class: "icon-button", "aria-label": "Close", onclick: () => dialog.close() }, icon("close"))),
    list,
    addForm,
    error,
    leave,
  );

  function draw() {
    const c = store.conversations.get(id);
    if (!c) return dialog.close();
    const mine = c.participants.find((p) => p.id === store.me.id);
    const manager = c.type === "group" && MANAGERS.has(mine?.role);
    addForm.hidden = !manager;
    leave.hidden = c.type !== "group";
    replaceChildren(
      list,
      c.participants.map((p) =>
        h(
          "li",
          { class: "member" },
          avatar(p.username, p.id, "sm"),
          h("span", { class: "member-name" }, p.username, p.id === store.me.id ? h("span", { class: "muted", text: " (you)" }) : null),
          p.role !== "member" ? h("span", { class: "role", text: p.role }) : null,
          manager && p.id !== store.me.id
            ? h("button", { class: "link-button", type: "button", text: "Remove", onclick: () => remove(p.id) })
            : null,
        ),
      ),
    );
  }

  async function add(event) {
    event.preventDefault();
    error.textContent = "";
    const { ids, emails } = api.splitPeople(input.value);
    if (emails.length) {
      error.textContent = `Add people by user id (${emails.join(", ")} is not one)`;
      return;
    }
    if (!ids.length) return;
    try {
      await api.addMembers(id, ids);
      input.value = "";
      await onChanged(id);
      draw();
    } catch (e) {
      error.textContent = e.message;
    }
  }

  async function remove(userId) {
    error.textContent = "";
    try {
      await api.removeMember(id, userId);
      if (userId === store.me.id) {
        dialog.close();
        return onLeft(id);
      }
      await onChanged(id);
      draw();
    } catch (e) {
      error.textContent = e.message;
    }
  }

  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  draw();
  dialog.showModal();
}
