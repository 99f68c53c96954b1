// The client's entry point: find the session (the cookies), then either the login card or
// the chat layout with its live connection.
import * as api from "./api.js";
import { h, replaceChildren } from "./dom.js";
import { ChatSocket } from "./socket.js";
import { store } from "./store.js";
import * as sync from "./sync.js";
import { renderAuth } from "./views/auth.js";
import { createChat } from "./views/chat.js";
import { openNewConversation } from "./views/dialogs.js";
import { openMembers } from "./views/members.js";
import { createSidebar } from "./views/sidebar.js";

const root = document.getElementById("app");
// A catch-up that failed (the server answers the socket but not yet REST) is tried again.
const CATCH_UP_RETRY_MS = 2_000;
let socket = null;

function catchUp() {
  sync.catchUpAll().catch(() => {
    setTimeout(() => {
      if (socket?.isOpen) catchUp();
    }, CATCH_UP_RETRY_MS);
  });
}

function frame(f) {
  switch (f.event) {
    case undefined:
    case "message":
      return sync.received(f);
    case "ack":
      return sync.acknowledged(f);
    case "error":
      return sync.sendFailed(f);
    case "typing":
      return sync.typingSeen(f);
    case "read":
      return sync.readSeen(f);
    default:
      // Frames of later server versions: ignored, never fatal.
      return undefined;
  }
}

async function start(user) {
  store.reset();
  store.me = user;
  await sync.refreshConversations();
  const app = h("div", { class: "layout" });
  const chat = createChat({
    onBack: () => open(null),
    onMembers: (id) =>
      openMembers(id, {
        onChanged: async (cid) => store.upsertConversation(await api.conversation(cid)),
        onLeft: async () => {
          open(null);
          await sync.refreshConversations();
        },
      }),
  });
  const sidebar = createSidebar({
    onOpen: open,
    onNew: () =>
      openNewConversation({
        onCreated: async (conversation) => {
          store.upsertConversation(conversation);
          open(conversation.id);
        },
      }),
    onLogout: logout,
  });
  app.append(sidebar, chat.node);
  replaceChildren(root, app);

  function open(id) {
    store.activeId = id;
    app.classList.toggle("show-chat", Boolean(id));
    history.replaceState(null, "", id ? `#${id}` : location.pathname);
    store.emit("conversations");
    chat.show(id);
  }

  socket = new ChatSocket({
    onFrame: frame,
    onOpen: ({ reconnected }) => {
      if (reconnected) catchUp();
      else sync.resendPending();
      if (store.activeId) sync.markRead(store.activeId);
    },
    onStatus: (status) => {
      store.status = status;
      store.emit("status", status);
    },
    onSessionLost: signedOut,
  });
  sync.useSocket(socket);
  socket.start();

  const wanted = location.hash.slice(1);
  if (store.conversations.has(wanted)) open(wanted);
}

async function logout() {
  try {
    await api.logout();
  } finally {
    signedOut();
  }
}

function signedOut() {
  socket?.stop();
  socket = null;
  sync.forgetSession();
  store.reset();
  history.replaceState(null, "", location.pathname);
  renderAuth(root, start);
}

async function boot() {
  document.addEventListener("visibilitychange", () => {
    if (store.activeId) sync.markRead(store.activeId);
  });
  let user = null;
  try {
    user = await api.me();
  } catch {
    user = null;
  }
  // From here on, a session that cannot be refreshed returns to the login card.
  api.onSessionLost(signedOut);
  if (user) await start(user);
  else renderAuth(root, start);
}

boot();
