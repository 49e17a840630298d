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

async function api(method, path, payload = {}) {
  const res = await fetch(`${lab.base}${path}`, {
    method,
    headers: method === 'POST' ? { 'content-type': 'application/json' } : {},
    body: method === 'POST' ? JSON.stringify(payload) : undefined,
    credentials: 'same-origin',
  });
  const body = await res.json().catch(() => ({}));
  return { status: res.status, body };
}

// A refused request means the access is over (expired token, lab gone): the page itself then
// shows the refusal, so reload rather than leave a dead terminal on screen.
const refused = (status) => status === 401 || status === 403 || status === 404 || status === 409 || status === 410;

/** Set once the learner ends the lab: closed terminals and refusals are then expected, not a reason to reload. */
let labEnded = false;

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
    if (labEnded) {
      this.term.write('\r\n\x1b[33m[the lab has ended]\x1b[0m\r\n');
      return;
    }
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
  if (labEnded) {
    $('time-left').textContent = 'ended';
    return;
  }
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
  if (labEnded) return;
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
  // The signed results, to keep or to check offline with frostgate verify-verdict.
  const files = ['score.json', score.evidence, 'verdict.sig', 'verdict.pub'].filter(Boolean);
  $('downloads').replaceChildren(
    ...files.map((name) => el('li', {}, el('a', { href: `${lab.base}/results/${name}`, download: `${lab.scenario_id}-${name}`, 'data-file': name }, name))),
  );
}

// Answers: a text field per answer criterion, each quiz question with its choices (or, for a
// matching question, a list to pick from per item). Kept in sessionStorage across reloads.
const answersKey = `fg-answers:${lab.scenario_id}`;
const el = (tag, attrs = {}, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== false) e.setAttribute(k, v === true ? '' : String(v));
  e.append(...children);
  return e;
};
function renderQuestions() {
  const root = $('answers');
  if (!root) return;
  for (const q of lab.questions) {
    const box = el('fieldset', { class: 'question', 'data-criterion': q.criterion }, el('legend', {}, `${q.description} (${q.points} pts)`));
    if (q.kind === 'answer') {
      box.append(el('input', { type: 'text', name: q.criterion, 'data-answer': q.criterion, 'aria-label': q.description, maxlength: 500 }));
    } else {
      for (const item of q.questions) {
        const qbox = el('div', { class: 'quiz-question', 'data-question': item.id }, el('p', {}, item.prompt));
        if (item.kind === 'choice') {
          item.choices.forEach((choice, i) => {
            const input = el('input', {
              type: item.multiple ? 'checkbox' : 'radio',
              name: `${q.criterion}.${item.id}`,
              value: i,
              'data-quiz': q.criterion,
              'data-qid': item.id,
            });
            qbox.append(el('label', { class: 'choice' }, input, ` ${choice}`));
          });
          if (item.multiple) qbox.append(el('p', { class: 'muted' }, 'Select every right answer.'));
        } else {
          for (const left of item.left) {
            const select = el(
              'select',
              { 'data-quiz': q.criterion, 'data-qid': item.id, 'data-left': left, 'aria-label': left },
              el('option', { value: '' }, '— choose —'),
            );
            for (const right of item.right) select.append(el('option', { value: right }, right));
            qbox.append(el('label', { class: 'match' }, el('span', {}, left), select));
          }
        }
        box.append(qbox);
      }
    }
    root.append(box);
  }
  const saved = JSON.parse(sessionStorage.getItem(answersKey) ?? '{}');
  for (const input of root.querySelectorAll('[data-answer]')) if (typeof saved[input.dataset.answer] === 'string') input.value = saved[input.dataset.answer];
  for (const input of root.querySelectorAll('input[data-quiz]')) {
    const given = saved[input.dataset.quiz]?.[input.dataset.qid];
    input.checked = Array.isArray(given) ? given.includes(Number(input.value)) : given === Number(input.value);
  }
  for (const select of root.querySelectorAll('select[data-quiz]')) {
    const given = saved[select.dataset.quiz]?.[select.dataset.qid]?.[select.dataset.left];
    if (typeof given === 'string') select.value = given;
  }
  root.addEventListener('change', () => sessionStorage.setItem(answersKey, JSON.stringify(collectAnswers())));
  root.addEventListener('input', () => sessionStorage.setItem(answersKey, JSON.stringify(collectAnswers())));
}

/** The answers as grading takes them: criterion -> text, or criterion -> {question -> index(es) | {left -> right}}. */
function collectAnswers() {
  const out = {};
  const root = $('answers');
  if (!root) return out;
  for (const input of root.querySelectorAll('[data-answer]')) if (input.value.trim() !== '') out[input.dataset.answer] = input.value.trim();
  for (const q of lab.questions.filter((x) => x.kind === 'quiz')) {
    const given = {};
    for (const item of q.questions) {
      if (item.kind === 'choice') {
        const picked = [...root.querySelectorAll(`input[data-quiz="${q.criterion}"][data-qid="${item.id}"]:checked`)].map((i) => Number(i.value));
        if (picked.length > 0) given[item.id] = item.multiple ? picked : picked[0];
      } else {
        const map = {};
        for (const select of root.querySelectorAll(`select[data-quiz="${q.criterion}"][data-qid="${item.id}"]`))
          if (select.value) map[select.dataset.left] = select.value;
        if (Object.keys(map).length > 0) given[item.id] = map;
      }
    }
    if (Object.keys(given).length > 0) out[q.criterion] = given;
  }
  return out;
}

/** How many answer fields and quiz questions are still empty. */
function unanswered() {
  const given = collectAnswers();
  let open = 0;
  for (const q of lab.questions) {
    if (q.kind === 'answer') open += given[q.criterion] === undefined ? 1 : 0;
    else for (const item of q.questions) open += given[q.criterion]?.[item.id] === undefined ? 1 : 0;
  }
  return open;
}

// Hints: general ones are free and shown on a click; a criterion's hint costs its penalty, says
// so before it is revealed, and the server records the unlock (it is part of the evidence).
function renderHints() {
  const list = $('hints');
  if (!list) return;
  for (const h of lab.hints) {
    const li = el('li', { class: 'hint', 'data-hint-criterion': h.criterion ?? '', 'data-hint-index': h.index });
    const text = el('p', { class: 'hint-text' }, h.text ?? '');
    text.hidden = h.text === undefined || h.criterion === null;
    const label = h.criterion === null ? 'General hint' : `Hint for: ${h.description}`;
    li.append(el('span', { class: 'hint-label' }, label));
    if (h.criterion === null || h.text === undefined) {
      const cost = h.penalty > 0 ? ` (costs ${h.penalty} point${h.penalty === 1 ? '' : 's'})` : ' (free)';
      const button = el('button', { type: 'button', class: 'unlock' }, `Show hint${cost}`);
      button.addEventListener('click', async () => {
        if (h.criterion === null) {
          text.hidden = false;
          button.remove();
          return;
        }
        const ok = await confirmDialog(
          'Unlock this hint?',
          `Unlocking it takes ${h.penalty} point${h.penalty === 1 ? '' : 's'} from “${h.description}” when your lab is graded. The unlock is recorded.`,
          'Unlock hint',
        );
        if (!ok) return;
        const r = await api('POST', '/hints', { criterion: h.criterion, index: h.index });
        if (r.status !== 200) {
          notice(r.body.detail ?? 'The hint could not be unlocked.');
          return;
        }
        text.textContent = r.body.text;
        text.hidden = false;
        button.remove();
        li.append(el('span', { class: 'muted' }, ` −${r.body.penalty} pts`));
      });
      li.append(button);
    } else li.append(el('span', { class: 'muted' }, ` −${h.penalty} pts`));
    li.append(text);
    list.append(li);
  }
}

/** A confirmation in the page's own dialog (resolves true on Confirm). */
function confirmDialog(title, text, confirmLabel) {
  const dialog = $('confirm');
  $('confirm-title').textContent = title;
  $('confirm-text').textContent = text;
  $('confirm-ok').textContent = confirmLabel;
  return new Promise((resolve) => {
    const done = (value) => {
      $('confirm-ok').onclick = null;
      $('confirm-cancel').onclick = null;
      dialog.close();
      resolve(value);
    };
    $('confirm-ok').onclick = () => done(true);
    $('confirm-cancel').onclick = () => done(false);
    dialog.oncancel = () => done(false);
    dialog.showModal();
  });
}

renderQuestions();
renderHints();

$('submit').addEventListener('click', async () => {
  const button = $('submit');
  const open = unanswered();
  const ok = await confirmDialog(
    'Submit for grading?',
    `${open > 0 ? `${open} question${open === 1 ? ' is' : 's are'} still unanswered. ` : ''}Your lab is graded as it is now, with your answers; a graded lab is not graded again.`,
    'Submit',
  );
  if (!ok) return;
  button.disabled = true;
  notice('Submitted: grading your lab…');
  const r = await api('POST', '/submit', { answers: collectAnswers() });
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

$('end-lab')?.addEventListener('click', async () => {
  const ok = await confirmDialog(
    'End this lab?',
    'The lab is graded now if it was not graded yet (with your answers), then its devices are removed and your lab slot is freed. This cannot be undone.',
    'End lab',
  );
  if (!ok) return;
  for (const b of document.querySelectorAll('header button')) b.disabled = true;
  labEnded = true;
  notice('Ending the lab: grading and removing its devices…');
  const r = await api('POST', '/end', { answers: collectAnswers() });
  if (r.status !== 200) {
    labEnded = false;
    notice(r.body.detail ?? 'The lab could not be ended.');
    for (const b of document.querySelectorAll('header button')) b.disabled = false;
    return;
  }
  if (r.body.score) showScore(r.body.score);
  renderClock();
  // Only the side panel scrolls to the result: scrollIntoView would scroll the document too and cut the header off.
  $('result').closest('.side').scrollTo({ top: 0 });
  notice(
    `The lab has ended${r.body.score ? `: ${r.body.score.total} / ${r.body.score.max}` : ''}${r.body.grading_error ? ` (grading failed: ${r.body.grading_error})` : ''}.`,
  );
  document.body.dataset.labState = 'ended';
  for (const t of terminals.values()) t.ws?.close();
});
