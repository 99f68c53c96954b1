// Asking before what cannot be undone: a small modal naming the action, answered by a
// promise (true: go ahead). Escape or Cancel says no.
import { h } from "../dom.js";

export function confirmAction({ title, text, action }) {
  return new Promise((resolve) => {
    const dialog = h(
      "dialog",
      { class: "dialog confirm", "aria-label": title },
      h(
        "form",
        { method: "dialog", class: "dialog-form" },
        h("h2", { class: "confirm-title", text: title }),
        h("p", { class: "muted", text }),
        h(
          "div",
          { class: "dialog-footer" },
          h("button", { class: "button", type: "submit", value: "cancel", text: "Cancel" }),
          h("button", { class: "button danger-fill", type: "submit", value: "confirm", "data-action": "confirm", text: action }),
        ),
      ),
    );
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(dialog.returnValue === "confirm");
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}
