// The new-conversation dialog: a direct chat with one person, or a named group.
import * as api from "../api.js";
import { h, replaceChildren } from "../dom.js";
import { icon } from "../icons.js";

export function openNewConversation({ onCreated }) {
  let mode = "direct";
  const error = h("p", { class: "form-error", role: "alert" });
  const person = h("input", { name: "person", placeholder: "bob@example.com or a user id", autocomplete: "off" });
  const name = h("input", { name: "group-name", placeholder: "Weekend plans", maxlength: "100" });
  const people = h("textarea", { name: "people", rows: "3", placeholder: "Emails or user ids, separated by commas or spaces" });
  const directFields = h("label", { class: "field" }, h("span", { text: "Who" }), person);
  const groupFields = h(
    "div",
    {},
    h("label", { class: "field" }, h("span", { text: "Group name" }), name),
    h("label", { class: "field" }, h("span", { text: "Members" }), people),
  );
  const submit = h("button", { class: "button primary", type: "submit", text: "Start chat" });
  const tabs = h("div", { class: "tabs" });
  const form = h("form", { method: "dialog", class: "dialog-form", onsubmit: onSubmit });
  const dialog = h("dialog", { class: "dialog", "aria-label": "New conversation" }, form);

  function setMode(next) {
    mode = next;
    directFields.hidden = mode !== "direct";
    groupFields.hidden = mode !== "group";
    person.required = mode === "direct";
    name.required = mode === "group";
    submit.textContent = mode === "direct" ? "Start chat" : "Create group";
    replaceChildren(
      tabs,
      ...[
        ["direct", "Direct message"],
        ["group", "New group"],
      ].map(([tab, label]) =>
        h("button", { type: "button", class: `tab${tab === mode ? " active" : ""}`, "data-tab": tab, text: label, onclick: () => setMode(tab) }),
      ),
    );
    (mode === "direct" ? person : name).focus();
  }

  async function onSubmit(event) {
    event.preventDefault();
    error.textContent = "";
    submit.disabled = true;
    try {
      const conversation =
        mode === "direct" ? await api.startDirect(person.value.trim()) : await api.createGroup(name.value.trim(), people.value);
      dialog.close();
      await onCreated(conversation);
    } catch (e) {
      error.textContent = e.message;
    } finally {
      submit.disabled = false;
    }
  }

  replaceChildren(
    form,
    h("header", { class: "dialog-header" }, h("h2", { text: "New conversation" }), h("button", { type: "button", class: "icon-button", "aria-label": "Close", onclick: () => dialog.close() }, icon("close"))),
    tabs,
    directFields,
    groupFields,
    error,
    h("footer", { class: "dialog-footer" }, h("button", { type: "button", class: "button", text: "Cancel", onclick: () => dialog.close() }), submit),
  );
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  setMode("direct");
}
