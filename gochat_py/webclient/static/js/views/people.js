// The people panel: find people (by name, as you type), my contacts with who is online,
// friend requests received (accept, reject) and sent (cancel), and the people I blocked.
// Every row is redrawn from the store, so the contact frames keep the panel live.
import * as api from "../api.js";
import { h, replaceChildren } from "../dom.js";
import { icon } from "../icons.js";
import { avatar, lastSeen } from "../format.js";
import * as people from "../people.js";
import { refusal } from "../refusals.js";
import { store } from "../store.js";

// Search waits for a pause in typing, and for a query the server accepts.
const SEARCH_AFTER_MS = 250;
const SEARCH_MIN_CHARS = 2;

export function openPeople({ onMessage }) {
  const error = h("p", { class: "form-error", role: "alert" });
  const query = h("input", { type: "search", name: "people-search", placeholder: "Search people by name", autocomplete: "off", "aria-label": "Search people" });
  const results = h("ul", { class: "person-list search-results" });
  const requests = h("div", { class: "people-section" });
  const contacts = h("div", { class: "people-section" });
  const blocked = h("div", { class: "people-section" });
  const dialog = h(
    "dialog",
    { class: "dialog side people", "aria-label": "People" },
    h("header", { class: "dialog-header" }, h("h2", { text: "People" }), h("button", { type: "button", class: "icon-button", "aria-label": "Close", onclick: () => dialog.close() }, icon("close"))),
    h("label", { class: "search" }, icon("search", 18), query),
    error,
    h("div", { class: "people-body" }, results, requests, contacts, blocked),
  );
  let found = null; // the last search's users, or null with no search
  let timer = null;
  let asked = 0; // answers to an older query than the newest are dropped

  query.addEventListener("input", () => {
    clearTimeout(timer);
    const q = query.value.trim();
    if (q.length < SEARCH_MIN_CHARS) {
      found = null;
      return draw();
    }
    timer = setTimeout(() => search(q), SEARCH_AFTER_MS);
  });

  async function search(q) {
    const mine = ++asked;
    try {
      const body = await api.searchUsers(q);
      if (mine !== asked) return;
      for (const u of body.users) store.noteName(u);
      found = body.users;
      draw();
    } catch (e) {
      if (mine === asked) error.textContent = e.message;
    }
  }

  // An action of a row: its errors land on the panel's error line, in words.
  function act(label, run, { kind = "", name } = {}) {
    return h("button", {
      type: "button",
      class: `button small ${kind}`,
      text: label,
      "data-action": label.toLowerCase().replace(/\s+/g, "-"),
      onclick: async (event) => {
        event.currentTarget.disabled = true;
        error.textContent = "";
        try {
          await run();
        } catch (e) {
          error.textContent = refusal(e.code, name, e.message);
          draw();
        }
      },
    });
  }

  function presenceText(userId) {
    const state = store.presence.get(userId);
    if (!state) return "";
    return state.status === "online" ? "online" : lastSeen(state.last_seen_at);
  }

  function menu(user) {
    const isBlocked = store.blocked.has(user.id);
    return h(
      "details",
      { class: "menu" },
      h("summary", { class: "icon-button", "aria-label": `More for ${user.username}`, title: "More" }, icon("more", 18)),
      h(
        "div",
        { class: "menu-items" },
        isBlocked
          ? act("Unblock", () => people.unblock(user.id), { name: store.nameOf(user) })
          : act("Block", () => people.block(user), { kind: "danger", name: store.nameOf(user) }),
      ),
    );
  }

  function row(user, { sub, actions = [], withPresence = false }) {
    const name = store.nameOf(user);
    const online = withPresence && store.isOnline(user.id);
    const status = withPresence ? presenceText(user.id) : "";
    return h(
      "li",
      { class: "person", "data-user-id": user.id, "data-username": user.username },
      avatar(name, user.id, "md", online, user.avatar_url),
      h(
        "span",
        { class: "person-body" },
        h("span", { class: "person-name", text: name }),
        h("span", { class: `person-sub${online ? " is-online" : ""}`, text: [sub ?? `@${user.username}`, status].filter(Boolean).join(" · ") }),
      ),
      h("span", { class: "person-actions" }, actions),
      menu(user),
    );
  }

  function section(node, title, items, emptyText) {
    if (!items.length && !emptyText) return replaceChildren(node);
    replaceChildren(
      node,
      h("h3", { class: "people-title", text: title }),
      items.length ? h("ul", { class: "person-list" }, items) : h("p", { class: "people-empty", text: emptyText }),
    );
  }

  function pendingWith(userId) {
    const incoming = [...store.incoming.values()].find((r) => r.from.id === userId);
    const outgoing = [...store.outgoing.values()].find((r) => r.to.id === userId);
    return { incoming, outgoing };
  }

  function searchRow(user) {
    const name = store.nameOf(user);
    const { incoming, outgoing } = pendingWith(user.id);
    const actions = [];
    if (store.blocked.has(user.id)) actions.push(h("span", { class: "tag", text: "Blocked" }));
    else if (store.contacts.has(user.id)) actions.push(h("span", { class: "tag ok", text: "Contact" }));
    else if (incoming) actions.push(act("Accept", () => people.decide(incoming, true), { kind: "primary", name }));
    else if (outgoing) actions.push(h("span", { class: "tag", text: "Requested" }));
    else actions.push(act("Add contact", () => people.sendRequest(user.id), { kind: "primary", name }));
    actions.push(act("Message", () => onMessage(user.id, dialog), { name }));
    return row(user, { actions, withPresence: store.contacts.has(user.id) });
  }

  function draw() {
    if (found) {
      results.hidden = false;
      replaceChildren(
        results,
        found.length ? found.map(searchRow) : h("li", { class: "people-empty", text: "Nobody by that name" }),
      );
    } else {
      results.hidden = true;
      replaceChildren(results);
    }
    const incoming = [...store.incoming.values()].map((r) =>
      row(r.from, {
        sub: "wants to be your contact",
        actions: [
          act("Accept", () => people.decide(r, true), { kind: "primary", name: store.nameOf(r.from) }),
          act("Reject", () => people.decide(r, false)),
        ],
      }),
    );
    const outgoing = [...store.outgoing.values()].map((r) =>
      row(r.to, { sub: "request sent", actions: [act("Cancel", () => people.cancel(r))] }),
    );
    section(requests, "Requests", [...incoming, ...outgoing], null);
    requests.classList.toggle("incoming", incoming.length > 0);
    const friends = [...store.contacts.values()].sort(
      (a, b) => Number(store.isOnline(b.user.id)) - Number(store.isOnline(a.user.id)) || store.nameOf(a.user).localeCompare(store.nameOf(b.user)),
    );
    section(
      contacts,
      `Contacts · ${friends.length}`,
      friends.map((c) =>
        row(c.user, {
          withPresence: true,
          actions: [
            act("Message", () => onMessage(c.user.id, dialog), { kind: "primary", name: store.nameOf(c.user) }),
            act("Remove", () => people.unfriend(c.user.id)),
          ],
        }),
      ),
      "No contacts yet: search for someone above.",
    );
    section(
      blocked,
      "Blocked",
      [...store.blocked.values()].map((b) => row(b.user, { actions: [act("Unblock", () => people.unblock(b.user.id))] })),
      null,
    );
  }

  // Clicking outside an open row menu closes it.
  dialog.addEventListener("click", (event) => {
    for (const open of dialog.querySelectorAll("details.menu[open]")) if (!open.contains(event.target)) open.open = false;
  });
  store.on("people", draw);
  store.on("presence", draw);
  dialog.addEventListener("close", () => {
    clearTimeout(timer);
    store.off("people", draw);
    store.off("presence", draw);
    dialog.remove();
  });
  document.body.append(dialog);
  draw();
  dialog.showModal();
  query.focus();
}
