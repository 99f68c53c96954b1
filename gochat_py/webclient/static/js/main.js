// The client's entry point: find the session (the cookies), then either the login card or
// the chat layout with its live connection, and the people around it.
import * as api from "./api.js";
import { h, replaceChildren } from "./dom.js";
import * as groups from "./groups.js";
import * as people from "./people.js";
import * as receipts from "./receipts.js";
import * as resume from "./resume.js";
import { ChatSocket } from "./socket.js";
import { store } from "./store.js";
import * as sync from "./sync.js";
import { renderAuth } from "./views/auth.js";
import { createChat } from "./views/chat.js";
import { openNewConversation } from "./views/dialogs.js";
import { openGroupInfo } from "./views/groupinfo.js";
import { openMembers } from "./views/members.js";
import { openPeople } from "./views/people.js";
import { openProfile } from "./views/profile.js";
import { createSidebar } from "./views/sidebar.js";

const root = document.getElementById("app");
// A catch-up that failed (the server answers the socket but not yet REST) is tried again.
const CATCH_UP_RETRY_MS = 2_000;
let socket = null;

function catchUp() {
  Promise.all([sync.catchUpAll(), people.loadPeople()]).catch(() => {
    setTimeout(() => {
      if (socket?.isOpen) catchUp();
    }, CATCH_UP_RETRY_MS);
  });
}

function frame(f) {
  if (people.handleFrame(f)) return undefined;
  switch (f.event) {
    case undefined:
    case "message":
      return sync.received(f);
    case "ack":
      return sync.acknowledged(f);
    case "message_updated":
    case "message_deleted":
      return sync.changed(f);
    case "error":
      return resume.refused(f) || sync.sendFailed(f);
    case "typing":
      return sync.typingSeen(f);
    case "read":
      return sync.readSeen(f);
    case "delivered":
      return receipts.deliveredSeen(f);
    case "resumed":
      return resume.resumed(f);
    case "conversation_deleted":
      return groups.deleted(f);
    default:
      // Frames of later server versions: ignored, never fatal.
      return undefined;
  }
}

async function start(user) {
  store.reset();
  store.me = user;
  // The profile adds my display name and settings to what /auth/me says.
  const [profile] = await Promise.all([api.myProfile(), sync.refreshConversations()]);
  Object.assign(store.me, profile);
  const app = h("div", { class: "layout" });
  const chat = createChat({
    onBack: () => open(null),
    onMembers: (id) => {
      if (store.conversations.get(id)?.type === "group") openGroupInfo(id, { onGone: () => open(null) });
      else openMembers(id);
    },
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
    onPeople: () => openPeople({ onMessage: message }),
    onProfile: openProfile,
  });
  app.append(sidebar, chat.node);
  replaceChildren(root, app);

  // "Message" on a person: the direct conversation of the pair, made if new, opened.
  async function message(userId, panel) {
    const conversation = await api.startDirect(userId);
    panel.close();
    store.upsertConversation(conversation);
    open(conversation.id);
  }

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
      // The resume frame first: until it comes the server holds the live frames back.
      resume.begin(socket, {
        onResumed: () => {
          sync.resendPending();
          if (reconnected) {
            // A conversation may have started meanwhile, and the people changed.
            sync.refreshConversations().catch(() => {});
            people.loadPeople().catch(() => {});
          }
        },
        onFailed: catchUp,
      });
      if (store.activeId) sync.markRead(store.activeId);
    },
    onStatus: (status) => {
      store.status = status;
      store.emit("status", status);
    },
    onSessionLost: signedOut,
  });
  sync.useSocket(socket);
  receipts.useSocket(socket);
  store.on("conversations", () => people.trackPresence().catch(() => {}));
  socket.start();
  people.loadPeople().catch(() => {});

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
  resume.cancel();
  sync.forgetSession();
  people.forgetPeople();
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
