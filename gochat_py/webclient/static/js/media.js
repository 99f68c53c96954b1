// Uploads and how media look: a file sent to POST /media with its progress (XMLHttpRequest:
// fetch reports no upload progress), the server's refusals in words, sizes, and which
// URL shows an avatar small.
import { ApiError, refresh } from "./api.js";

const UPLOAD_URL = "/api/v1/media";
// What the server answers for a file it will not take (README, Media), in words.
const REFUSED = {
  file_too_large: "This file is too large to send.",
  unsupported_file_type: "This kind of file can't be sent. Images, PDF, text, audio, video and zip files can.",
  not_an_image: "This file is not the image its name says.",
  invalid_image: "This image could not be read.",
  image_too_large: "This image has too many pixels to send.",
  media_quota_exceeded: "Your storage is full: delete some messages with files first.",
  rate_limited: "Too many uploads at once: wait a moment and try again.",
};
// By status when the server's answer carried no code (a proxy's 413, say).
const REFUSED_BY_STATUS = { 413: "file_too_large", 415: "unsupported_file_type", 429: "rate_limited", 507: "media_quota_exceeded" };

export function uploadRefusal(error) {
  if (!(error instanceof ApiError)) return "Could not reach the server. Try again.";
  return REFUSED[error.code] ?? REFUSED[REFUSED_BY_STATUS[error.status]] ?? error.message;
}

function post(file, onProgress, signal) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", UPLOAD_URL);
    xhr.withCredentials = true;
    xhr.responseType = "json";
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    xhr.addEventListener("load", () => resolve(xhr));
    xhr.addEventListener("error", () => reject(new TypeError("network error")));
    xhr.addEventListener("abort", () => reject(new DOMException("upload cancelled", "AbortError")));
    signal?.addEventListener("abort", () => xhr.abort());
    const form = new FormData();
    form.append("file", file, file.name || "pasted");
    xhr.send(form);
  });
}

// The upload's answer `{id, content_type, size, name, width, height, url, thumbnail_url}`,
// or an ApiError; `onProgress(fraction)` as the bytes leave. A 401 is answered once by a
// refresh and the upload sent again, as api.js does.
export async function upload(file, { onProgress = () => {}, signal } = {}) {
  let xhr = await post(file, onProgress, signal);
  if (xhr.status === 401) {
    await refresh();
    xhr = await post(file, onProgress, signal);
  }
  if (xhr.status === 201) return xhr.response;
  const error = xhr.response?.error ?? {};
  throw new ApiError(xhr.status, error.code ?? `http_${xhr.status}`, error.message ?? xhr.statusText, error.field);
}

export const isImage = (media) => Boolean(media?.thumbnail_url && media.width);

// An avatar drawn small: its thumbnail (the route every raster image has, README's Media).
export const avatarThumbnail = (url) => (url ? `${url}/thumbnail` : null);

export function fileSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KB", "MB", "GB"];
  let size = bytes / 1024;
  let unit = 0;
  while (size >= 1024 && unit < units.length - 1) {
    size /= 1024;
    unit += 1;
  }
  return `${size < 10 ? size.toFixed(1) : Math.round(size)} ${units[unit]}`;
}
