// Log in and register: one card, two tabs. The server sets the session cookies.
import * as api from "../api.js";
import { h, replaceChildren } from "../dom.js";

export function renderAuth(root, onSignedIn) {
  let mode = "login";
  const error = h("p", { class: "form-error", role: "alert" });
  const email = h("input", { name: "email", type: "email", autocomplete: "email", required: true, placeholder: "you@example.com" });
  const username = h("input", { name: "username", autocomplete: "username", placeholder: "3–32 letters, digits or _", pattern: "[A-Za-z0-9_]{3,32}" });
  const password = h("input", { name: "password", type: "password", required: true, minlength: "8", placeholder: "at least 8 characters" });
  const usernameField = h("label", { class: "field" }, h("span", { text: "Username" }), username);
  const submit = h("button", { class: "button primary wide", type: "submit" });
  const tabs = h("div", { class: "tabs", role: "tablist" });

  const form = h(
    "form",
    { class: "auth-form", novalidate: false, onsubmit: onSubmit },
    h("label", { class: "field" }, h("span", { text: "Email" }), email),
    usernameField,
    h("label", { class: "field" }, h("span", { text: "Password" }), password),
    error,
    submit,
  );

  function setMode(next) {
    mode = next;
    const register = mode === "register";
    usernameField.hidden = !register;
    username.required = register;
    password.autocomplete = register ? "new-password" : "current-password";
    submit.textContent = register ? "Create account" : "Log in";
    error.textContent = "";
    replaceChildren(
      tabs,
      tab("login", "Log in"),
      tab("register", "Create account"),
    );
  }

  function tab(name, label) {
    return h("button", {
      type: "button",
      role: "tab",
      class: `tab${mode === name ? " active" : ""}`,
      "aria-selected": String(mode === name),
      "data-tab": name,
      text: label,
      onclick: () => setMode(name),
    });
  }

  async function onSubmit(event) {
    event.preventDefault();
    submit.disabled = true;
    error.textContent = "";
    try {
      const result =
        mode === "register"
          ? await api.register(email.value.trim(), username.value.trim(), password.value)
          : await api.login(email.value.trim(), password.value);
      await onSignedIn(result.user);
    } catch (e) {
      error.textContent = e.message || "Something went wrong";
    } finally {
      submit.disabled = false;
    }
  }

  setMode("login");
  replaceChildren(
    root,
    h(
      "main",
      { class: "auth" },
      h(
        "section",
        { class: "auth-card" },
        h(
          "div",
          { class: "brand" },
          h("img", { src: "/client/img/icon.svg", alt: "", width: "40", height: "40" }),
          h("div", {}, h("h1", { text: "gochat" }), h("p", { text: "Real-time chat" })),
        ),
        tabs,
        form,
      ),
    ),
  );
  email.focus();
}
