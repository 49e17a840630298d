// The learner's lab page: one xterm.js terminal per device (opened on first view), each on a
// WebSocket to a login shell in that device; time left, extend, and submit for grading.
import { Terminal } from './xterm.mjs';
import { FitAddon } from './addon-fit.mjs';

const dataElement = document.getElementById('lab-data');
const lab = JSON.parse(dataElement.textContent);

// xterm.js adds <style> elements at run time. The page's CSP admits inline styles only with
// this response's nonce, so every style element created here carries it (and no other does).
const styleNonce = dataElement.nonce;
const createElement = Document.prototype.createElement;
Document.prototype.createElement = function (tagName, options) {
  const element = createElement.call(this, tagName, options);
  if (String(tagName).toLowerCase() === 'style') element.nonce = styleNonce;
  return element;
};

const $ = (id) => document.getElementById(id);
const notice = (text) => {
  const n = $('notice');
  n.textContent = text;
  n.hidden = !text;
};

async function api(method, path) {
  const res = await fetch(`${lab.base}${path}`, {
    method,
    headers: method === 'POST' ? { 'content-type': 'application/json' } : {},
    body: method === 'POST' ? '{}' : undefined,
    credentials: 'same-origin',
  });
  const body = await res.json().catch(() => ({}));
  return { status: res.status, body };
}

// A refused request means the access is over (expired token, lab gone): the page itself then
// shows the refusal, so reload rather than leave a dead terminal on screen.
const refused = (status) => status === 401 || status === 403 || status === 404 || status === 409 || status === 410;

const CLOSE = { replaced: 4001, shellExited: 4002, accessEnded: 4401, idle: 4408, labGone: 4410, tooMany: 4429 };

class DeviceTerminal {
  constructor(device, pane) {
    this.device = device;
    this.pane = pane;
    this.storageKey = `fg-term:${lab.scenario_id}:${device}`;
    this.retries = 0;
    this.ready = false;
    this.waitingForNewShell = false;
  }

  open() {
    this.term = new Terminal({
      cursorBlink: true,
      fontSize: 14,
      fontFamily: 'ui-monospace, "DejaVu Sans Mono", monospace',
      scrollback: 5000,
      theme: { background: '#0b1020', foreground: '#e2e8f0' },
    });
    this.fit = new FitAddon();
    this.term.loadAddon(this.fit);
    this.term.open(this.pane);
    this.fit.fit();
    // Copy and paste: Ctrl+Shift+C copies the selection, Ctrl+Shift+V pastes (the browser's own paste).
    this.term.attachCustomKeyEventHandler((e) => {
      if (e.type === 'keydown' && e.ctrlKey && e.shiftKey && e.code === 'KeyC') {
        const text = this.term.getSelection();
        if (text) void navigator.clipboard?.writeText(text);
        return false;
      }
      if (e.ctrlKey && e.shiftKey && e.code === 'KeyV') return false;
      return true;
    });
    this.term.onData((data) => {
      $('idle-warning').hidden = true;
      if (this.waitingForNewShell) {
        this.waitingForNewShell = false;
        sessionStorage.removeItem(this.storageKey);
        this.connect();
        return;
      }
      this.send({ type: 'input', data });
    });
    this.term.onResize(({ cols, rows }) => this.send({ type: 'resize', cols, rows }));
    this.connect();
  }

  send(message) {
    if (this.ready && this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  connect() {
    const session = sessionStorage.getItem(this.storageKey);
    const q = new URLSearchParams({ cols: String(this.term.cols), rows: String(this.term.rows) });
    if (session) q.set('session', session);
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${scheme}//${location.host}${lab.base}/terminal/${encodeURIComponent(this.device)}?${q}`);
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    this.ready = false;
    this.pane.dataset.state = 'connecting';
    ws.onmessage = (event) => {
      if (typeof event.data !== 'string') {
        this.term.write(new Uint8Array(event.data));
        return;
      }
      const m = JSON.parse(event.data);
      if (m.type === 'ready') {
        this.ready = true;
        this.retries = 0;
        this.pane.dataset.state = 'connected';
        sessionStorage.setItem(this.storageKey, m.session);
        if (session && !m.resumed) this.term.write('\r\n\x1b[33m[the previous shell was closed; this is a new one]\x1b[0m\r\n');
        this.send({ type: 'resize', cols: this.term.cols, rows: this.term.rows });
      } else if (m.type === 'idle_warning') {
        const w = $('idle-warning');
        w.textContent = `${this.device}: no input for a while; this terminal closes in ${m.seconds_left} s. Press any key in it to keep it open.`;
        w.hidden = false;
      } else if (m.type === 'exit') {
        this.term.write(`\r\n\x1b[33m[the shell exited with code ${m.exit_code}]\x1b[0m\r\n`);
      }
    };
    ws.onclose = (event) => {
      if (this.ws !== ws) return;
      this.ready = false;
      this.pane.dataset.state = 'closed';
      void this.closed(event);
    };
  }

  offerNewShell(message) {
    this.term.write(`\r\n\x1b[33m[${message} Press any key for a new shell.]\x1b[0m\r\n`);
    this.waitingForNewShell = true;
  }

  async closed(event) {
    switch (event.code) {
      case CLOSE.replaced:
        this.term.write('\r\n\x1b[33m[this terminal was opened in another window]\x1b[0m\r\n');
        return;
      case CLOSE.accessEnded:
      case CLOSE.labGone:
        location.reload();
        return;
      case CLOSE.shellExited:
        this.offerNewShell('The shell ended.');
        return;
      case CLOSE.idle:
        $('idle-warning').hidden = true;
        this.offerNewShell('Closed after a long time without input.');
        return;
      case CLOSE.tooMany:
        this.term.write(`\r\n\x1b[31m[${event.reason}]\x1b[0m\r\n`);
        this.waitingForNewShell = true;
        return;
    }
    // A network blip (or a refused upgrade, which the browser reports the same way): ask the
    // server whether access still holds, then reconnect to the same shell with a backoff.
    const status = await api('GET', '/status').catch(() => ({ status: 0 }));
    if (refused(status.status)) {
      location.reload();
      return;
    }
    this.retries += 1;
    if (this.retries > 30) {
      this.offerNewShell('Could not reconnect.');
      return;
    }
    this.pane.dataset.state = 'reconnecting';
    setTimeout(() => this.connect(), Math.min(5000, 250 * 2 ** Math.min(this.retries, 5)));
  }

  show() {
    if (!this.term) this.open();
    else this.fit.fit();
    this.term.focus();
  }
}

const terminals = new Map();
for (const pane of document.querySelectorAll('.term')) terminals.set(pane.dataset.device, new DeviceTerminal(pane.dataset.device, pane));

function selectDevice(device) {
  for (const tab of document.querySelectorAll('.tab')) tab.setAttribute('aria-selected', String(tab.dataset.device === device));
  for (const [name, t] of terminals) t.pane.hidden = name !== device;
  terminals.get(device)?.show();
}
for (const tab of document.querySelectorAll('.tab')) tab.addEventListener('click', () => selectDevice(tab.dataset.device));
window.addEventListener('resize', () => {
  for (const t of terminals.values()) if (t.term && !t.pane.hidden) t.fit.fit();
});
if (lab.devices.length > 0) selectDevice(lab.devices[0]);

// Time left, refreshed from the server every 30 s (another tab may have extended it).
let expiresAt = Date.parse(lab.expires_at);
function renderClock() {
  const left = Math.max(0, Math.floor((expiresAt - Date.now()) / 1000));
  const h = Math.floor(left / 3600);
  const m = Math.floor((left % 3600) / 60);
  const s = left % 60;
  const el = $('time-left');
  el.textContent = `${h > 0 ? `${h}:` : ''}${String(m).padStart(h > 0 ? 2 : 1, '0')}:${String(s).padStart(2, '0')}`;
  el.dataset.secondsLeft = String(left);
  el.classList.toggle('low', left < 300);
}
renderClock();
setInterval(renderClock, 1000);
setInterval(async () => {
  const r = await api('GET', '/status').catch(() => undefined);
  if (r && r.status === 200) expiresAt = Date.parse(r.body.expires_at);
  else if (r && refused(r.status)) location.reload();
}, 30_000);

$('extend')?.addEventListener('click', async () => {
  const r = await api('POST', '/extend');
  if (r.status === 200) {
    expiresAt = Date.parse(r.body.expires_at);
    renderClock();
    notice(`Extended: the lab now ends at ${new Date(expiresAt).toLocaleTimeString()}.`);
  } else notice(r.body.detail ?? 'The lab could not be extended.');
});

function showScore(score) {
  $('result').hidden = false;
  $('score').textContent = `Score: ${score.total} / ${score.max}`;
  const list = $('criteria');
  list.replaceChildren(
    ...score.criteria.map((c) => {
      const li = document.createElement('li');
      li.className = `criterion ${c.status}`;
      li.dataset.criterion = c.id;
      li.textContent = `${c.status === 'passed' ? '✔' : c.status === 'skipped' ? '–' : '✘'} ${c.description} (${c.awarded}/${c.points})`;
      return li;
    }),
  );
}

$('submit').addEventListener('click', async () => {
  const button = $('submit');
  button.disabled = true;
  notice('Submitted: grading your lab…');
  const r = await api('POST', '/submit');
  if (r.status !== 202) {
    notice(r.body.detail ?? 'The lab could not be submitted.');
    button.disabled = false;
    return;
  }
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const s = await api('GET', '/status').catch(() => undefined);
    if (!s) continue;
    if (s.status !== 200) {
      notice(s.body.detail ?? 'Grading status is unavailable.');
      break;
    }
    if (s.body.grading.status === 'scored') {
      notice('Grading finished.');
      showScore(s.body.grading.score);
      break;
    }
    if (s.body.grading.status === 'failed') {
      notice(s.body.grading.error ?? 'Grading failed.');
      break;
    }
  }
  button.disabled = false;
});
