// Choosing a picture, for my profile or a group's: a button that opens the file picker,
// uploads the image (media.js) and hands it to `use(media)`, which sets it; what fails,
// the upload or the setting, is said in words under it.
import { h } from "../dom.js";
import { icon } from "../icons.js";
import { upload, uploadRefusal } from "../media.js";
import { failureInWords } from "../refusals.js";

export function picturePicker({ label, action, use, clear = null }) {
  const status = h("span", { class: "picture-status muted", role: "status" });
  const input = h("input", { type: "file", accept: "image/png,image/jpeg,image/gif,image/webp", hidden: true, "data-action": `${action}-file`, onchange: chosen });
  const button = h("button", { class: "button small", type: "button", "data-action": action, onclick: () => input.click() }, icon("camera", 16), ` ${label}`);
  const remove = clear ? h("button", { class: "link-button plain", type: "button", "data-action": `${action}-remove`, text: "Remove", onclick: () => run(clear) }) : null;
  const node = h("div", { class: "picture-actions" }, h("div", { class: "picture-buttons" }, button, remove), input, status);

  async function chosen() {
    const [file] = input.files;
    input.value = "";
    if (!file) return;
    button.disabled = true;
    status.className = "picture-status muted";
    status.textContent = "Uploading…";
    let media;
    try {
      media = await upload(file, { onProgress: (f) => (status.textContent = `Uploading… ${Math.round(f * 100)}%`) });
    } catch (e) {
      button.disabled = false;
      return fail(uploadRefusal(e));
    }
    await run(() => use(media));
  }

  async function run(change) {
    button.disabled = true;
    try {
      await change();
      status.textContent = "";
    } catch (e) {
      fail(failureInWords(e));
    } finally {
      button.disabled = false;
    }
  }

  function fail(text) {
    status.className = "picture-status form-error";
    status.setAttribute("role", "alert");
    status.textContent = text;
  }

  // `hasPicture`: whether there is one to remove.
  return { node, show: (hasPicture) => remove && (remove.hidden = !hasPicture) };
}
