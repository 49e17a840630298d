// The learner portal: sign in with an entitlement token, start a lab, go back into a running one.
// Starting or entering answers a one-time access link, which this browser opens at once (the lab
// page moves it into the lab session's cookie).
const portal = JSON.parse(document.getElementById('portal-data').textContent);
const $ = (id) => document.getElementById(id);

async function post(path, payload) {
  const res = await fetch(`${portal.base}${path}`, {
    method: 'POST',
    headers: payload === undefined ? {} : { 'content-type': 'application/json' },
    body: payload === undefined ? undefined : JSON.stringify(payload),
    credentials: 'same-origin',
  });
  const body = res.status === 204 ? {} : await res.json().catch(() => ({}));
  return { ok: res.ok, status: res.status, body };
}

const say = (text, el = $('notice')) => {
  if (!el) return;
  el.textContent = text;
  el.hidden = !text;
};

// Sign-in page.
const signIn = $('sign-in-button');
if (signIn) {
  signIn.addEventListener('click', async () => {
    const token = $('entitlement-token').value.trim();
    if (!token) return say('Paste your entitlement token first.', $('sign-in-error'));
    signIn.disabled = true;
    const r = await post('/sign-in', { entitlement_token: token });
    signIn.disabled = false;
    if (r.ok) return location.assign(portal.base);
    say(r.body.detail ?? `Sign-in failed (${r.status}).`, $('sign-in-error'));
  });
}

$('sign-out')?.addEventListener('click', async () => {
  await post('/sign-out');
  location.assign(portal.base);
});

/** Runs a request that answers an access link, and opens the lab with it. */
async function openLab(button, path, payload, busyText) {
  button.disabled = true;
  const label = button.textContent;
  button.textContent = busyText;
  const r = await post(path, payload);
  if (r.ok && r.body.access_url) return location.assign(r.body.access_url);
  button.disabled = false;
  button.textContent = label;
  say(r.body.detail ?? `The request failed (${r.status}).`);
}

for (const button of document.querySelectorAll('button.start')) {
  button.addEventListener('click', () => openLab(button, '/labs', { track: button.dataset.track, template: button.dataset.template }, 'Starting…'));
}
for (const button of document.querySelectorAll('button.enter')) {
  button.addEventListener('click', () => openLab(button, `/labs/${encodeURIComponent(button.dataset.scenario)}/enter`, undefined, 'Opening…'));
}
