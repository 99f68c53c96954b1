// An image shown whole over the page: a click anywhere or Escape closes it; its name, the
// caption and a download link beside it.
import { h } from "../dom.js";
import { icon } from "../icons.js";

export function openImage(media, caption = "") {
  const dialog = h(
    "dialog",
    { class: "lightbox", "aria-label": media.name },
    h("img", { src: media.url, alt: media.name }),
    h(
      "div",
      { class: "lightbox-bar" },
      h("a", { href: media.url, download: media.name, title: "Download", "aria-label": "Download", "data-action": "download-image", onclick: (event) => event.stopPropagation() }, icon("download")),
      h("button", { type: "button", class: "icon-button", title: "Close", "aria-label": "Close", "data-action": "close-image" }, icon("close")),
    ),
    h("p", { class: "lightbox-caption", text: caption || media.name }),
  );
  dialog.addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  return dialog;
}
