// My profile: my picture, the name others see, a bio, who may write to me directly and
// whether others see when I am online.
import * as api from "../api.js";
import { h, replaceChildren } from "../dom.js";
import { avatar } from "../format.js";
import { icon } from "../icons.js";
import { store } from "../store.js";
import { picturePicker } from "./picture.js";

export async function openProfile() {
  const error = h("p", { class: "form-error", role: "alert" });
  const saved = h("p", { class: "form-note", role: "status" });
  const displayName = h("input", { name: "display_name", maxlength: "64", placeholder: store.me.username, autocomplete: "name" });
  const bio = h("textarea", { name: "bio", rows: "3", maxlength: "500", placeholder: "A few words about you" });
  const contactsOnly = h("input", { type: "checkbox", name: "dm_policy" });
  const showPresence = h("input", { type: "checkbox", name: "show_presence" });
  const submit = h("button", { class: "button primary", type: "submit", text: "Save", disabled: true });
  // Disabled until the profile is here, so what was typed is never overwritten by it.
  const fields = h("fieldset", { class: "profile-fields", disabled: true });
  const form = h("form", { class: "dialog-form", onsubmit: save });
  const dialog = h("dialog", { class: "dialog", "aria-label": "Profile" }, form);
  const pictureShown = h("span", { class: "profile-picture" });
  // A picture is set at once, apart from the form's Save.
  const setPicture = async (mediaId) => fill(await api.updateProfile({ avatar_media_id: mediaId }));
  const picture = picturePicker({ label: "Change photo", action: "change-avatar", use: (media) => setPicture(media.id), clear: () => setPicture(null) });

  async function save(event) {
    event.preventDefault();
    error.textContent = "";
    saved.textContent = "";
    submit.disabled = true;
    try {
      const profile = await api.updateProfile({
        display_name: displayName.value.trim() || null,
        bio: bio.value.trim() || null,
        dm_policy: contactsOnly.checked ? "contacts" : "everyone",
        show_presence: showPresence.checked,
      });
      fill(profile);
      saved.textContent = "Saved";
    } catch (e) {
      error.textContent = e.message;
    } finally {
      submit.disabled = false;
    }
  }

  function drawPicture() {
    replaceChildren(pictureShown, avatar(store.nameOf(store.me), store.me.id, "xl", false, store.me.avatar_url));
    picture.show(Boolean(store.me.avatar_url));
  }

  function fill(profile) {
    Object.assign(store.me, profile);
    store.emit("me");
    drawPicture();
    displayName.value = profile.display_name ?? "";
    bio.value = profile.bio ?? "";
    contactsOnly.checked = profile.dm_policy === "contacts";
    showPresence.checked = profile.show_presence;
  }

  replaceChildren(
    form,
    h("header", { class: "dialog-header" }, h("h2", { text: "Profile" }), h("button", { type: "button", class: "icon-button", "aria-label": "Close", onclick: () => dialog.close() }, icon("close"))),
    h("div", { class: "picture-field" }, pictureShown, picture.node),
    h("p", { class: "profile-handle muted", text: `@${store.me.username} · ${store.me.email ?? ""}` }),
    fields,
    error,
    saved,
    h("footer", { class: "dialog-footer" }, h("button", { type: "button", class: "button", text: "Close", onclick: () => dialog.close() }), submit),
  );
  replaceChildren(
    fields,
    h("label", { class: "field" }, h("span", { text: "Display name" }), displayName),
    h("label", { class: "field" }, h("span", { text: "Bio" }), bio),
    h("label", { class: "switch" }, contactsOnly, h("span", {}, h("strong", { text: "Only contacts can message me" }), h("small", { text: "Others can't start a direct chat with you or write in one." }))),
    h("label", { class: "switch" }, showPresence, h("span", {}, h("strong", { text: "Show when I'm online" }), h("small", { text: "Off: everyone sees you offline, with no last seen." }))),
  );
  drawPicture();
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  try {
    fill(await api.myProfile());
    fields.disabled = false;
    submit.disabled = false;
    displayName.focus();
  } catch (e) {
    error.textContent = e.message;
  }
}
