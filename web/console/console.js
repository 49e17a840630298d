// The console's page: who is signed in, sign-out, and the view the hash names.
import { api, loadSession, signInAgain } from './api.js';
import { decisionView, decisionsView } from './decisions.js';
import { changeView, governanceView } from './governance.js';
import { auditView, blocksView, errorText, h, keysView, labsView, scoresView, sessionsView, status, tenantsView } from './views.js';

const VIEWS = {
  decisions: decisionsView,
  blocks: blocksView,
  governance: governanceView,
  keys: keysView,
  tenants: tenantsView,
  labs: labsView,
  scores: scoresView,
  audit: auditView,
  sessions: sessionsView,
};

let me;

async function route() {
  const main = document.getElementById('view');
  const [path, search] = (location.hash.slice(1) || '/decisions').split('?');
  const params = new URLSearchParams(search || '');
  const [, name, id] = path.split('/');
  for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('current', a.getAttribute('href') === `#/${name}`);
  main.replaceChildren(h('p', { class: 'loading' }, 'Loading…'));
  status('', 'info');
  try {
    if (name === 'decision') await decisionView(main, id);
    else if (name === 'change') await changeView(main, id, me);
    else await (VIEWS[name] ?? decisionsView)(main, params, me);
    main.focus?.();
  } catch (err) {
    main.replaceChildren(h('h1', {}, 'This view could not load'), h('p', { class: 'error', role: 'alert' }, errorText(err)));
  }
}

async function start() {
  me = await loadSession();
  document.getElementById('who').textContent = `${me.subject} · tenant ${me.tenant_id}`;
  document.getElementById('logout').addEventListener('click', async () => {
    status('Signing out…', 'busy');
    await api('POST', '/logout');
    document.body.replaceChildren(
      h('main', { class: 'signed-out' }, h('h1', {}, 'Signed out'), h('p', {}, 'Your session is revoked.'), h('a', { href: '/login' }, 'Sign in again')),
    );
  });
  window.addEventListener('hashchange', route);
  await route();
}

start().catch((err) => {
  if (err?.status !== 401) signInAgain(errorText(err));
});
