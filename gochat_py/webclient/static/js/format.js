// How names, times and people look: initials, avatar colours, clock and day labels.
import { h } from "./dom.js";
import { avatarThumbnail } from "./media.js";

const DAY_MS = 24 * 60 * 60 * 1000;

export function initials(name) {
  const parts = (name || "?").replace(/[_.-]+/g, " ").trim().split(/\s+/);
  // "ann_lee" → AL; "bob_9170bf" → B: a part that starts with a digit is no name.
  if (parts.length > 1 && !/^\d/.test(parts[1])) return (parts[0][0] + parts[1][0]).toUpperCase();
  return parts[0][0].toUpperCase();
}

// A stable hue per id or name, so a person keeps their colour everywhere.
export function hue(key) {
  let hash = 0;
  for (const ch of String(key)) hash = (hash * 31 + ch.codePointAt(0)) | 0;
  return Math.abs(hash) % 360;
}

// `online`: true draws the green dot of someone online. `picture`: the avatar_url of a
// person or a group, drawn from its thumbnail over the initials, which stay when it has
// none or it fails to load.
export function avatar(name, key, size = "md", online = false, picture = null) {
  const node = h("span", {
    class: `avatar avatar-${size}${online ? " online" : ""}`,
    style: { "--hue": String(hue(key ?? name)) },
    "aria-hidden": "true",
    text: initials(name),
  });
  if (picture) {
    const img = h("img", { class: "avatar-picture", src: avatarThumbnail(picture), alt: "", decoding: "async" });
    img.addEventListener("error", () => img.remove());
    node.append(img);
  }
  return node;
}

function startOfDay(ms) {
  const d = new Date(ms);
  d.setHours(0, 0, 0, 0);
  return d.getTime();
}

export function clock(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

export function dayLabel(ms) {
  const days = Math.round((startOfDay(Date.now()) - startOfDay(ms)) / DAY_MS);
  if (days === 0) return "Today";
  if (days === 1) return "Yesterday";
  const sameYear = new Date(ms).getFullYear() === new Date().getFullYear();
  return new Date(ms).toLocaleDateString([], {
    weekday: days < 7 ? "long" : undefined,
    day: "numeric",
    month: "long",
    year: sameYear ? undefined : "numeric",
  });
}

export function sameDay(a, b) {
  return startOfDay(a) === startOfDay(b);
}

// The conversation list's time: the clock today, the weekday this week, else the date.
export function listTime(ms) {
  if (!ms) return "";
  const days = Math.round((startOfDay(Date.now()) - startOfDay(ms)) / DAY_MS);
  if (days === 0) return clock(ms);
  if (days === 1) return "Yesterday";
  if (days < 7) return new Date(ms).toLocaleDateString([], { weekday: "short" });
  return new Date(ms).toLocaleDateString([], { day: "numeric", month: "short" });
}

export function listOfNames(names) {
  if (names.length <= 2) return names.join(" and ");
  return `${names.slice(0, -1).join(", ")} and ${names.at(-1)}`;
}

// "last seen today at 14:05", "last seen yesterday at 09:12", "last seen 3 March".
export function lastSeen(ms) {
  if (!ms) return "offline";
  const days = Math.round((startOfDay(Date.now()) - startOfDay(ms)) / DAY_MS);
  if (Date.now() - ms < 60_000) return "last seen just now";
  if (days === 0) return `last seen today at ${clock(ms)}`;
  if (days === 1) return `last seen yesterday at ${clock(ms)}`;
  return `last seen ${new Date(ms).toLocaleDateString([], { day: "numeric", month: "long" })}`;
}

// A time in a list of events: "just now", "5 min ago", then as the conversation list.
export function ago(ms) {
  const minutes = Math.floor((Date.now() - ms) / 60_000);
  if (minutes < 1) return "just now";
  if (minutes < 60) return `${minutes} min ago`;
  return listTime(ms);
}
