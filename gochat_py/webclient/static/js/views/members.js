// The members of a conversation: who is in it, with the owner's and admins' badges, and
// what I may do to each from a row's `⋮` (the owner: make admin or member, make owner;
// the owner or an admin: remove), and, for a group's managers, adding people by user id.
// The group info panel shows it; a direct conversation's panel shows it alone.
import * as api from "../api.js";
import { h, replaceChildren } from "../dom.js";
import { avatar } from "../format.js";
import * as groups from "../groups.js";
import { icon } from "../icons.js";
import { failureInWords } from "../refusals.js";
import { store } from "../store.js";
import { confirmAction } from "./confirm.js";

const MANAGERS = new Set(["owner", "admin"]);
const BADGES = { owner: "Owner", admin: "Admin" };
// Owner first, then admins, then everyone else; each by name.
const RANK = { owner: 0, admin: 1, member: 2 };

// `say(text)`: shows a refusal (or "" to clear it) where the panel keeps its errors.
export function createMemberList(id, { say }) {
  const list = h("ul", { class: "member-list" });
  const input = h("input", { name: "user-ids", placeholder: "User ids, separated by commas", autocomplete: "off" });
  const addForm = h(
    "form",
    { class: "add-member", onsubmit: add },
    input,
    h("button", { class: "button primary", type: "submit", text: "Add" }),
  );
  const node = h("div", { class: "members" }, list, addForm);
  // The member whose actions are shown, under their row: in the flow of the list, so a
  // scrolling panel never clips them.
  let openFor = null;

  function draw() {
    const c = store.conversations.get(id);
    if (!c) return;
    const mine = store.myRole(c);
    addForm.hidden = !(c.type === "group" && MANAGERS.has(mine));
    const ordered = [...c.participants].sort(
      (a, b) => RANK[a.role] - RANK[b.role] || store.nameOf(a).localeCompare(store.nameOf(b)),
    );
    replaceChildren(list, ordered.map((p) => row(c, p, mine)));
  }

  function row(c, p, mine) {
    const name = store.nameOf(p);
    const actions = c.type === "group" ? actionsOn(c, p, mine) : [];
    return h(
      "li",
      { class: "member", "data-user-id": p.id, "data-role": p.role },
      avatar(name, p.id, "sm", store.isOnline(p.id), store.pictureOf(c, p.id)),
      h(
        "span",
        { class: "member-body" },
        h("span", { class: "member-name" }, name, p.id === store.me.id ? h("span", { class: "muted", text: " (you)" }) : null),
        name !== p.username ? h("span", { class: "member-sub", text: `@${p.username}` }) : null,
      ),
      BADGES[p.role] ? h("span", { class: `role role-${p.role}`, text: BADGES[p.role] }) : null,
      actions.length
        ? h(
            "button",
            { class: "icon-button", type: "button", "aria-label": `More for ${p.username}`, "aria-expanded": String(openFor === p.id), title: "More", "data-action": "member-menu", onclick: () => toggle(p.id) },
            icon("more", 18),
          )
        : null,
      actions.length && openFor === p.id ? h("div", { class: "member-actions" }, actions) : null,
    );
  }

  function toggle(userId) {
    openFor = openFor === userId ? null : userId;
    draw();
  }

  // What I may do to member `p`: the server would refuse anything else.
  function actionsOn(c, p, mine) {
    if (p.id === store.me.id || p.role === "owner" || !MANAGERS.has(mine)) return [];
    const item = (action, label, run, danger = false) =>
      h("button", { class: `button small${danger ? " danger" : ""}`, type: "button", "data-action": action, text: label, onclick: () => act(run) });
    const items = [];
    if (mine === "owner") {
      items.push(
        p.role === "admin"
          ? item("make-member", "Dismiss as admin", () => groups.setRole(id, p.id, "member"))
          : item("make-admin", "Make group admin", () => groups.setRole(id, p.id, "admin")),
        item("make-owner", "Make group owner", () => transfer(c, p)),
      );
    }
    items.push(item("remove-member", "Remove from group", () => groups.removeMember(id, p.id), true));
    return items;
  }

  async function transfer(c, p) {
    const name = store.nameOf(p);
    const ok = await confirmAction({
      title: `Make ${name} the owner?`,
      text: `${name} will own "${store.displayName(c)}" and decide who manages it. You stay in the group as an admin.`,
      action: "Make owner",
    });
    if (ok) await groups.transfer(id, p.id);
  }

  // Runs a change; a refusal is said in words, naming the member it was about.
  async function act(run) {
    say("");
    openFor = null;
    draw();
    try {
      await run();
    } catch (error) {
      say(failureInWords(error, "That person"));
    }
  }

  async function add(event) {
    event.preventDefault();
    const { ids, emails } = api.splitPeople(input.value);
    if (emails.length) {
      say(`Add people by user id (${emails.join(", ")} is not one)`);
      return;
    }
    if (!ids.length) return;
    await act(async () => {
      await groups.addMembers(id, ids);
      input.value = "";
    });
  }

  draw();
  return { node, draw };
}


// The members panel of a direct conversation: the two of us.
export function openMembers(id) {
  const error = h("p", { class: "form-error", role: "alert" });
  const members = createMemberList(id, { say: (text) => (error.textContent = text) });
  const dialog = h(
    "dialog",
    { class: "dialog side", "aria-label": "Members" },
    h("header", { class: "dialog-header" }, h("h2", { text: "Members" }), h("button", { type: "button", class: "icon-button", "aria-label": "Close", onclick: () => dialog.close() }, icon("close"))),
    members.node,
    error,
  );
  const redraw = () => (store.conversations.has(id) ? members.draw() : dialog.close());
  store.on("conversations", redraw);
  dialog.addEventListener("close", () => {
    store.off("conversations", redraw);
    dialog.remove();
  });
  document.body.append(dialog);
  dialog.showModal();
}
