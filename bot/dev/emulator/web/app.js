// The local Slack page: renders the emulator's workspace (channels, Block Kit, threads, ephemerals,
// modals, reactions) and sends what the chosen user does through the emulator's control API.
// No framework, no CDN: this file is all of it.
"use strict";

const EMOJI = {
  white_check_mark: "✅", x: "❌", rotating_light: "🚨", warning: "⚠️", thumbsup: "👍", "+1": "👍",
  hourglass: "⏳", hourglass_flowing_sand: "⏳", tada: "🎉", mag: "🔍", shield: "🛡️", eyes: "👀",
  heavy_check_mark: "✔️", red_circle: "🔴", large_green_circle: "🟢", memo: "📝", rocket: "🚀", pushpin: "📌",
};
const QUICK_REACTIONS = ["white_check_mark", "x", "+1", "eyes", "pushpin"];

// gone: views open when this page loaded. Slack's client drops an open modal when it reloads (the app is not
// told; the view is simply no longer on screen), so they never show here again.
const ui = { user: null, channel: null, thread: null, state: null, raw: "", busy: false, done: new Map(), typed: {},
  gone: null };
const $ = (id) => document.getElementById(id);

function esc(text) {
  return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}
function unslack(text) { return String(text).replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&"); }
function emoji(text) { return text.replace(/:([a-z0-9_+-]+):/g, (m, name) => EMOJI[name] || m); }

function userName(id) {
  const user = (ui.state.users || []).find((u) => u.id === id);
  if (user) return user.name;
  if (id === ui.state.bot.user_id) return "rollback-bot";
  return id;
}
function channelName(id) {
  const channel = (ui.state.channels || []).find((c) => c.id === id);
  return channel ? channel.name : id;
}
function groupHandle(id) {
  const group = (ui.state.groups || []).find((g) => g.id === id);
  return group ? group.handle : id;
}

function token(inner) {
  const [target, label] = inner.split("|");
  if (target.startsWith("@")) return `<span class="mention">@${esc(userName(target.slice(1)))}</span>`;
  if (target.startsWith("#")) return `<span class="mention">#${esc(label || channelName(target.slice(1)))}</span>`;
  if (target.startsWith("!subteam^")) return `<span class="mention">@${esc(groupHandle(target.slice(9)))}</span>`;
  if (target.startsWith("!date^")) {
    const epoch = Number(target.split("^")[1]);
    const when = new Date(epoch * 1000);
    return `<time datetime="${when.toISOString()}" title="${esc(label || "")}">${esc(when.toLocaleString())}</time>`;
  }
  if (target === "!channel" || target === "!here") return `<span class="mention">@${target.slice(1)}</span>`;
  if (/^(https?|mailto):/.test(target)) return `<a href="${esc(target)}" target="_blank" rel="noopener">${esc(label ? unslack(label) : target)}</a>`;
  return esc(inner);
}

function inline(text) {
  // text is Slack mrkdwn outside code; tokens <...> first, then bold/italic/strike on the rest
  return text.split(/(<[^<>]+>)/).map((part) => {
    if (/^<[^<>]+>$/.test(part)) return token(part.slice(1, -1));
    let out = esc(unslack(part));
    out = out.replace(/(^|[\s(>])\*([^*\n]+)\*(?=$|[\s).,:;!?<])/g, "$1<b>$2</b>");
    out = out.replace(/(^|[\s(>])_([^_\n]+)_(?=$|[\s).,:;!?<])/g, "$1<i>$2</i>");
    out = out.replace(/(^|[\s(>])~([^~\n]+)~(?=$|[\s).,:;!?<])/g, "$1<s>$2</s>");
    return emoji(out);
  }).join("");
}

function mrkdwn(text) {
  return String(text || "").split("```").map((chunk, index) => {
    if (index % 2 === 1) return `<pre>${esc(unslack(chunk.replace(/^\n/, "")))}</pre>`;
    return chunk.split("`").map((piece, j) => (j % 2 === 1 ? `<code>${esc(unslack(piece))}</code>` : inline(piece))).join("");
  }).join("");
}

function plain(obj) {
  if (!obj) return "";
  return obj.type === "mrkdwn" ? mrkdwn(obj.text) : emoji(esc(obj.text));
}

async function control(action, body) {
  const response = await fetch(`/_emulator/${action}`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  const answer = await response.json();
  if (!answer.ok && answer.error) console.warn(action, answer.error);
  setTimeout(refresh, 150);
  return answer;
}

function askConfirm(confirm) {
  return new Promise((resolve) => {
    const dialog = $("dialog");
    dialog.innerHTML = `<h3>${plain(confirm.title)}</h3><div>${plain(confirm.text)}</div>
      <div class="buttons"><button class="btn" data-answer="no">${plain(confirm.deny) || "Cancel"}</button>
      <button class="btn ${confirm.style === "danger" ? "danger" : "primary"}" data-answer="yes">${plain(confirm.confirm) || "Confirm"}</button></div>`;
    $("overlay").hidden = false;
    ui.confirming = true;
    dialog.querySelectorAll("button").forEach((b) => b.addEventListener("click", () => {
      $("overlay").hidden = true;
      ui.confirming = false;
      resolve(b.dataset.answer === "yes");
    }));
  });
}

function element(el, message) {
  const click = (extra) => control("click", { user: ui.user, channel: message.channel, ts: message.ts,
    action_id: el.action_id, ...extra });
  if (el.type === "button") {
    const button = document.createElement("button");
    button.className = `btn ${el.style || ""}`;
    button.innerHTML = plain(el.text);
    button.dataset.actionId = el.action_id;
    button.addEventListener("click", async () => {
      if (el.confirm && !(await askConfirm(el.confirm))) return;
      click({ value: el.value });
      if (el.url && !openPermalink(el.url)) window.open(el.url, "_blank", "noopener");
    });
    return button;
  }
  if (el.type === "checkboxes") {
    const box = document.createElement("div");
    box.className = "checks";
    const initial = new Set((el.initial_options || []).map((o) => o.value));
    for (const option of el.options || []) {
      const label = document.createElement("label");
      const input = document.createElement("input");
      input.type = "checkbox";
      input.value = option.value;
      input.checked = initial.has(option.value);
      input.addEventListener("change", () => {
        const selected = [...box.querySelectorAll("input:checked")].map((i) => i.value);
        click({ selected });
      });
      label.append(input, " ");
      label.insertAdjacentHTML("beforeend", plain(option.text));
      box.append(label);
    }
    return box;
  }
  if (el.type === "static_select" || el.type === "overflow") {
    const select = document.createElement("select");
    select.dataset.actionId = el.action_id;
    select.innerHTML = `<option value="">${esc((el.placeholder || {}).text || "Choose…")}</option>` +
      (el.options || []).map((o) => `<option value="${esc(o.value)}">${esc(o.text.text)}</option>`).join("");
    select.addEventListener("change", () => { if (select.value) click({ value: select.value }); });
    return select;
  }
  const span = document.createElement("span");
  span.textContent = `[${el.type}]`;
  return span;
}

function blocks(list, message) {
  const out = document.createElement("div");
  for (const block of list || []) {
    const node = document.createElement("div");
    if (block.type === "header") { node.className = "block-header"; node.innerHTML = plain(block.text); }
    else if (block.type === "section") {
      node.className = "block-section";
      node.innerHTML = block.text ? plain(block.text) : "";
      if (block.fields) node.insertAdjacentHTML("beforeend", `<div class="fields">${block.fields.map((f) => `<div>${plain(f)}</div>`).join("")}</div>`);
      if (block.accessory) node.append(element(block.accessory, message));
    } else if (block.type === "context") {
      node.className = "block-context";
      node.innerHTML = (block.elements || []).map((e) => (e.type === "image" ? "" : plain(e))).join(" ");
    } else if (block.type === "divider") { node.className = "block-divider"; node.innerHTML = "<hr>"; }
    else if (block.type === "actions") {
      node.className = "block-actions";
      for (const el of block.elements || []) node.append(element(el, message));
    } else if (block.type === "image") {
      node.innerHTML = `<img alt="${esc(block.alt_text || "")}" src="${esc(block.image_url)}">`;
    } else { node.textContent = `[${block.type}]`; }
    out.append(node);
  }
  return out;
}

function renderMessage(message, { inThread = false } = {}) {
  const node = document.createElement("div");
  node.className = `msg${message.ephemeral ? " ephemeral" : ""}`;
  node.dataset.ts = message.ts;
  const when = new Date(Number(String(message.ts).split(".")[0]) * 1000);
  const author = message.bot_id || message.ephemeral ? "rollback-bot" : userName(message.user);
  node.innerHTML = `<div class="meta"><b>${esc(author)}</b><span class="time">${esc(when.toLocaleTimeString())}</span>
    ${message.ephemeral ? '<span class="only"> · only visible to you</span>' : ""}</div>`;
  if (message.blocks && message.blocks.length) node.append(blocks(message.blocks, message));
  else node.insertAdjacentHTML("beforeend", `<div class="block-section">${mrkdwn(message.text)}</div>`);
  for (const file of message.files || []) {
    const isImage = /\.(png|jpe?g|gif)$/i.test(file.name || "");
    node.insertAdjacentHTML("beforeend", `<div class="file">📎 <a href="/_emulator/files/${esc(file.id)}" target="_blank">${esc(file.title || file.name)}</a>
      ${isImage ? `<img alt="${esc(file.title || file.name)}" src="/_emulator/files/${esc(file.id)}">` : ""}</div>`);
  }
  if (!message.ephemeral) {
    const reactions = document.createElement("div");
    reactions.className = "reactions";
    for (const reaction of message.reactions || []) {
      const pill = document.createElement("button");
      const mine = reaction.users.includes(currentUserId());
      pill.className = `reaction${mine ? " mine" : ""}`;
      pill.title = reaction.users.map(userName).join(", ");
      pill.textContent = `${EMOJI[reaction.name] || `:${reaction.name}:`} ${reaction.users.length}`;
      pill.addEventListener("click", () => react(message, reaction.name, !mine));
      reactions.append(pill);
    }
    node.append(reactions);
    const tools = document.createElement("div");
    tools.className = "tools";
    for (const name of QUICK_REACTIONS) {
      const b = document.createElement("button");
      b.textContent = EMOJI[name];
      b.title = `React with :${name}:`;
      b.dataset.react = name;
      b.addEventListener("click", () => react(message, name, true));
      tools.append(b);
    }
    if (!inThread) {
      const reply = document.createElement("button");
      reply.textContent = "Reply";
      reply.addEventListener("click", () => openThread(message.ts));
      tools.append(reply);
    }
    node.append(tools);
    const count = inThread ? 0 : replies(message.channel, message.ts).length;
    if (count) {
      const link = document.createElement("div");
      link.className = "replies";
      link.textContent = `${count} repl${count === 1 ? "y" : "ies"}`;
      link.addEventListener("click", () => openThread(message.ts));
      node.append(link);
    }
  }
  return node;
}

function react(message, name, added) {
  control("react", { user: ui.user, channel: message.channel, ts: message.ts, name, added });
}

function replies(channel, ts) {
  return (ui.state.messages[channel] || []).filter((m) => m.thread_ts === ts && m.ts !== ts);
}

function currentUserId() {
  const user = (ui.state.users || []).find((u) => u.name === ui.user);
  return user ? user.id : null;
}

function ephemerals(channel, threadTs) {
  const me = currentUserId();
  return (ui.state.ephemerals || []).filter((e) => e.user === me && e.channel === channel &&
    (threadTs ? e.thread_ts === threadTs : !e.thread_ts))
    .map((e) => ({ ...e, ephemeral: true }));
}

function openThread(ts) { ui.thread = ts; render(); }

// A permalink into this workspace (…/archives/C123/p1700000000000100) opens the message's thread here,
// as Slack's client does, instead of leaving the page.
function openPermalink(url) {
  const found = /\/archives\/([A-Z0-9]+)\/p(\d+)(\d{6})$/.exec(url);
  if (!found || !url.startsWith(location.origin)) return false;
  const [, channel, seconds, micros] = found;
  const ts = `${seconds}.${micros}`;
  const message = ((ui.state && ui.state.messages && ui.state.messages[channel]) || []).find((m) => m.ts === ts);
  ui.channel = channel;
  ui.thread = message && message.thread_ts ? message.thread_ts : ts;
  render();
  return true;
}

document.addEventListener("click", (event) => {
  const link = event.target.closest && event.target.closest("a[href]");
  if (link && openPermalink(link.href)) event.preventDefault();
});

function renderSidebar() {
  const users = (ui.state.users || []).filter((u) => !u.is_bot);
  const select = $("user");
  if (!select.options.length) {
    select.innerHTML = users.map((u) => `<option value="${esc(u.name)}">${esc(u.real_name || u.name)} (@${esc(u.name)})</option>`).join("");
    select.value = ui.user;
    select.addEventListener("change", () => { ui.user = select.value; localStorage.setItem("user", ui.user); render(); });
  }
  const me = currentUserId();
  const roles = (ui.state.groups || []).filter((g) => g.users.includes(me)).map((g) => `@${g.handle}`);
  $("user-hint").textContent = roles.length ? `member of ${roles.join(", ")}` : "no group: a bystander";
  $("channels").innerHTML = "";
  for (const channel of ui.state.channels || []) {
    const li = document.createElement("li");
    li.textContent = `${channel.is_private ? "🔒" : "#"} ${channel.name}`;
    if (!channel.is_member) li.title = "rollback-bot is not in this channel";
    li.dataset.channel = channel.name;
    if (channel.id === ui.channel) li.className = "active";
    li.addEventListener("click", () => { ui.channel = channel.id; ui.thread = null; render(); });
    $("channels").append(li);
  }
}

function renderModal() {
  if (ui.confirming) return;
  const me = currentUserId();
  // A view this page just submitted or closed never comes back, even from a state fetched before the server
  // recorded it as closed.
  // A modal holds a stack of views and shows the top one: a form opened while another is open goes on top, and
  // closing it shows the one below as it was typed (ui.typed keeps every field as it is typed).
  const view = (ui.state.views || []).filter((v) => v.user === me && !ui.gone.has(v.id) && (!ui.done.has(v.id) ||
    (v.errors && ui.done.get(v.id) !== JSON.stringify(v.errors)))).slice(-1)[0];
  const overlay = $("overlay");
  if (!view) { if (!overlay.hidden && overlay.dataset.view) { overlay.hidden = true; overlay.dataset.view = ""; } return; }
  const shown = `${view.id}:${JSON.stringify(view.errors || null)}`;
  if (overlay.dataset.view === shown && !overlay.hidden) return; // keep what is being typed
  overlay.dataset.view = shown;
  const dialog = $("dialog");
  dialog.innerHTML = `<h3>${plain(view.title)}</h3>`;
  const form = document.createElement("form");
  for (const block of view.blocks || []) {
    if (block.type !== "input") { form.append(blocks([block], {})); continue; }
    const field = document.createElement("div");
    field.className = "field";
    field.dataset.blockId = block.block_id;
    field.innerHTML = `<label>${plain(block.label)}${block.optional ? ' <span class="hint">(optional)</span>' : ""}</label>`;
    const el = block.element;
    if (el.type === "plain_text_input") {
      const input = document.createElement(el.multiline ? "textarea" : "input");
      if (!el.multiline) input.type = "text";
      input.name = block.block_id;
      const typed = (ui.typed[view.id] || {})[block.block_id];  // Slack keeps what was typed (errors, a stack)
      input.value = typed != null ? typed : el.initial_value || "";
      input.addEventListener("input", () => { (ui.typed[view.id] = ui.typed[view.id] || {})[block.block_id] = input.value; });
      field.append(input);
    } else if (el.type === "static_select") {
      const select = document.createElement("select");
      select.name = block.block_id;
      select.innerHTML = '<option value="">Choose…</option>' + el.options.map((o) => `<option value="${esc(o.value)}">${esc(o.text.text)}</option>`).join("");
      const typed = (ui.typed[view.id] || {})[block.block_id];
      if (typed != null) select.value = typed; else if (el.initial_option) select.value = el.initial_option.value;
      select.addEventListener("change", () => { (ui.typed[view.id] = ui.typed[view.id] || {})[block.block_id] = select.value; });
      field.append(select);
    } else if (el.type === "checkboxes") {
      const typed = (ui.typed[view.id] || {})[block.block_id];
      const initial = new Set(typed != null ? typed : (el.initial_options || []).map((o) => o.value));
      for (const o of el.options) {
        field.insertAdjacentHTML("beforeend", `<label style="font-weight:400"><input type="checkbox" name="${esc(block.block_id)}" value="${esc(o.value)}" ${initial.has(o.value) ? "checked" : ""}> ${esc(o.text.text)}</label>`);
      }
      field.addEventListener("change", () => {
        (ui.typed[view.id] = ui.typed[view.id] || {})[block.block_id] =
          [...field.querySelectorAll("input:checked")].map((b) => b.value);
      });
    }
    if (block.hint) field.insertAdjacentHTML("beforeend", `<div class="hint">${plain(block.hint)}</div>`);
    const error = (view.errors || {})[block.block_id];
    if (error) field.insertAdjacentHTML("beforeend", `<div class="field-error">${esc(error)}</div>`);
    form.append(field);
  }
  form.insertAdjacentHTML("beforeend", `<div class="buttons"><button type="button" class="btn" id="modal-close">${plain(view.close) || "Cancel"}</button>
    <button type="submit" class="btn primary" id="modal-submit">${plain(view.submit) || "Submit"}</button></div>`);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const values = {};
    for (const field of form.querySelectorAll(".field")) {
      const id = field.dataset.blockId;
      const boxes = field.querySelectorAll("input[type=checkbox]");
      if (boxes.length) values[id] = [...boxes].filter((b) => b.checked).map((b) => b.value);
      else { const input = field.querySelector("input, textarea, select"); values[id] = input ? input.value : null; }
    }
    overlay.hidden = true;
    ui.done.set(view.id, JSON.stringify(view.errors || null));
    ui.typed[view.id] = values;
    control("submit", { user: ui.user, view_id: view.id, values });
  });
  form.querySelector("#modal-close").addEventListener("click", () => {
    overlay.hidden = true;
    ui.done.set(view.id, JSON.stringify(view.errors || null));
    control("close_view", { view_id: view.id });
  });
  dialog.append(form);
  overlay.hidden = false;
}

function render() {
  if (!ui.state) return;
  renderSidebar();
  const channel = (ui.state.channels || []).find((c) => c.id === ui.channel);
  $("channel-name").textContent = channel ? `# ${channel.name}` : "";
  $("channel-topic").textContent = channel && channel.topic ? channel.topic : "";
  const list = $("messages");
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  const top = (ui.state.messages[ui.channel] || []).filter((m) => !m.thread_ts || m.thread_ts === m.ts)
    .map((m) => ({ ...m, channel: ui.channel }));
  const mine = ephemerals(ui.channel, null);
  const all = [...top, ...mine].sort((a, b) => Number(a.ts) - Number(b.ts));
  list.innerHTML = "";
  for (const message of all) list.append(renderMessage(message));
  if (atBottom) list.scrollTop = list.scrollHeight;
  const thread = $("thread");
  if (ui.thread) {
    const parent = top.find((m) => m.ts === ui.thread);
    const items = replies(ui.channel, ui.thread).map((m) => ({ ...m, channel: ui.channel }));
    const extra = ephemerals(ui.channel, ui.thread);
    const box = $("thread-messages");
    const threadBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
    box.innerHTML = "";
    if (parent) box.append(renderMessage(parent, { inThread: true }));
    for (const m of [...items, ...extra].sort((a, b) => Number(a.ts) - Number(b.ts))) box.append(renderMessage(m, { inThread: true }));
    if (threadBottom) box.scrollTop = box.scrollHeight;
    thread.hidden = false;
  } else { thread.hidden = true; }
  renderModal();
}

async function refresh() {
  if (ui.busy) return;
  ui.busy = true;
  try {
    const response = await fetch("/_emulator/state");
    const text = await response.text();
    if (text !== ui.raw) {
      ui.raw = text;
      ui.state = JSON.parse(text);
      if (ui.gone === null) ui.gone = new Set((ui.state.views || []).map((v) => v.id));
      if (!ui.channel) {
        const first = ui.state.channels.find((c) => c.name.startsWith("incident")) || ui.state.channels[0];
        ui.channel = first.id;
      }
      const focused = document.activeElement;
      if (!(focused && focused.tagName === "SELECT" && focused.closest("#messages, #thread-messages"))) render();
    }
  } catch (error) { console.warn("refresh failed", error); }
  finally { ui.busy = false; }
}

function send(text, threadTs) {
  const trimmed = text.trim();
  if (!trimmed) return;
  const channel = channelName(ui.channel);
  if (trimmed.startsWith("/")) {
    const space = trimmed.indexOf(" ");
    const command = space < 0 ? trimmed : trimmed.slice(0, space);
    control("slash", { user: ui.user, channel, command, text: space < 0 ? "" : trimmed.slice(space + 1) });
  } else if (/^@(bot|rollback-bot)\b/.test(trimmed)) {
    control("mention", { user: ui.user, channel, text: trimmed.replace(/^@\S+\s*/, "") });
  } else {
    control("post", { user: ui.user, channel, text: trimmed, thread_ts: threadTs || undefined });
  }
}

$("composer").addEventListener("submit", (event) => { event.preventDefault(); send($("text").value); $("text").value = ""; });
$("thread-composer").addEventListener("submit", (event) => {
  event.preventDefault(); send($("thread-text").value, ui.thread); $("thread-text").value = "";
});
$("close-thread").addEventListener("click", () => { ui.thread = null; render(); });
ui.user = new URLSearchParams(location.search).get("as") || localStorage.getItem("user") || "casey";
refresh();
setInterval(refresh, 700);
