// The governance queue: proposals with their diff against the version they replace, the canary
// report, and approve / reject / canary / deploy / rollback through the governance API.
import { api, query } from './api.js';
import { act, h, json, paged, status, when } from './views.js';

/** A line diff of two JSON documents (longest common subsequence; documents are small). */
export function lineDiff(before, after) {
  const a = before ? JSON.stringify(before, null, 2).split('\n') : [];
  const b = JSON.stringify(after, null, 2).split('\n');
  const lcs = Array.from({ length: a.length + 1 }, () => new Array(b.length + 1).fill(0));
  for (let i = a.length - 1; i >= 0; i--)
    for (let j = b.length - 1; j >= 0; j--) lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
  const out = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) out.push(['same', a[i++], j++]);
    else if (j < b.length && (i >= a.length || lcs[i][j + 1] >= lcs[i + 1][j])) out.push(['add', b[j++]]);
    else out.push(['del', a[i++]]);
  }
  return h(
    'pre',
    { class: 'diff', id: 'change-diff' },
    out.map(([kind, line]) => h('span', { class: kind }, `${kind === 'add' ? '+ ' : kind === 'del' ? '- ' : '  '}${line}\n`)),
  );
}

export async function governanceView(main, params) {
  const filter = params.get('status') || '';
  const { changes } = await api('GET', `/governance/changes${query({ status: filter, limit: 500 })}`);
  const propose = h(
    'form',
    {
      class: 'card',
      id: 'propose',
      onsubmit: (e) => {
        e.preventDefault();
        const data = new FormData(e.target);
        act('Proposing the change', async () => {
          let content;
          try {
            content = JSON.parse(data.get('content'));
          } catch (err) {
            throw new Error(`the content is not JSON: ${err.message}`);
          }
          const change = await api('POST', '/governance/changes', { kind: data.get('kind'), content, justification: data.get('justification') });
          location.hash = `#/change/${change.id}`;
        });
      },
    },
    h('h2', {}, 'Propose a change'),
    h(
      'label',
      {},
      'Kind ',
      h(
        'select',
        { name: 'kind' },
        ['ruleset', 'doctrine', 'ratelimit'].map((k) => h('option', { value: k }, k)),
      ),
    ),
    h('label', { class: 'block' }, 'Content (JSON, the whole new version) ', h('textarea', { name: 'content', rows: 10, required: true, spellcheck: 'false' })),
    h('label', { class: 'block' }, 'Justification ', h('input', { name: 'justification', required: true, minlength: 3, size: 60 })),
    h('button', { type: 'submit' }, 'Propose'),
  );
  main.replaceChildren(
    h('h1', {}, 'Governance'),
    h(
      'p',
      { class: 'filters' },
      ['', 'proposed', 'approved', 'deployed', 'rolled_back', 'rejected'].map((s) => [
        h('a', { href: `#/governance${s ? `?status=${s}` : ''}`, class: s === filter ? 'current' : '' }, s || 'all'),
        ' ',
      ]),
    ),
    paged(
      [
        { label: 'Change', cell: (c) => h('a', { href: `#/change/${c.id}` }, c.id) },
        { label: 'Kind', cell: (c) => `${c.kind} ${c.version}` },
        { label: 'Status', cell: (c) => c.status },
        { label: 'Risk', cell: (c) => h('span', { class: `risk ${c.risk}` }, c.risk) },
        { label: 'Approvals', cell: (c) => `${c.approvals.filter((a) => a.decision === 'approve').length} / ${c.required_approvals}` },
        { label: 'Author', cell: (c) => c.author },
        { label: 'Proposed', cell: (c) => when(c.created_at) },
      ],
      changes,
      'No change requests.',
    ),
    propose,
  );
}

export async function changeView(main, id, me) {
  const c = await api('GET', `/governance/changes/${id}`);
  // The version this change replaces, when it was itself deployed through governance.
  const { changes } = await api('GET', `/governance/changes${query({ limit: 500 })}`);
  const base = changes.find((x) => x.kind === c.kind && x.version === c.base_version && x.id !== c.id);
  const reload = () => changeView(main, id, me);
  const withReason = (verb, path) =>
    act(`${verb} ${c.id}`, async () => {
      const reason = document.getElementById('reason').value.trim();
      await api('POST', `/governance/changes/${c.id}/${path}`, reason ? { reason } : {});
      await reload();
    });
  const actions = h(
    'div',
    { class: 'card actions' },
    h('h2', {}, 'Act on this change'),
    h('label', { class: 'block' }, 'Reason (needed to reject and roll back) ', h('input', { id: 'reason', size: 60 })),
    h('button', { type: 'button', id: 'approve', onclick: () => withReason('Approving', 'approve') }, 'Approve'),
    h('button', { type: 'button', id: 'reject', onclick: () => withReason('Rejecting', 'reject') }, 'Reject'),
    h(
      'button',
      {
        type: 'button',
        id: 'canary',
        onclick: () =>
          act(`Running the canary of ${c.id} (replaying recent events through both versions)`, async () => {
            await api('POST', `/governance/changes/${c.id}/canary`, { limit: 1000 });
            await reload();
          }),
      },
      'Run canary',
    ),
    h(
      'button',
      {
        type: 'button',
        id: 'deploy',
        onclick: () =>
          act(`Deploying ${c.id}`, async () => {
            await api('POST', `/governance/changes/${c.id}/deploy`, {});
            await reload();
          }),
      },
      'Deploy',
    ),
    h('button', { type: 'button', id: 'rollback', onclick: () => withReason('Rolling back', 'rollback') }, 'Roll back'),
  );
  main.replaceChildren(
    h('p', {}, h('a', { href: '#/governance' }, '← Governance')),
    h('h1', {}, `Change ${c.id}`),
    h(
      'dl',
      { class: 'facts' },
      [
        ['Kind and version', `${c.kind} ${c.version} (replaces ${c.base_version})`],
        ['Status', c.status],
        ['Risk', `${c.risk}: ${c.risk_reasons.join('; ') || 'no reason given'}`],
        ['Approvals needed', `${c.required_approvals} with ${c.approver_scope}`],
        ['Author', c.author + (c.author === me.subject ? ' (you)' : '')],
        ['Justification', c.justification],
        ['Proposed', when(c.created_at)],
        ['Deployed', when(c.deployed_at)],
        ['Rolled back', c.rolled_back_at ? `${when(c.rolled_back_at)}: ${c.rollback_reason}` : '—'],
      ].flatMap(([k, v]) => [h('dt', {}, k), h('dd', { id: `fact-${k.split(' ')[0].toLowerCase()}` }, v)]),
    ),
    h('h2', {}, 'Approvals'),
    paged(
      [
        { label: 'Who', cell: (a) => a.subject },
        { label: 'Decision', cell: (a) => a.decision },
        { label: 'Reason', cell: (a) => a.reason ?? '' },
        { label: 'At', cell: (a) => when(a.at) },
      ],
      c.approvals,
    ),
    actions,
    h('h2', {}, 'Canary report'),
    c.canary ? json(c.canary) : h('p', {}, 'No canary has run.'),
    h('h2', {}, base ? `Diff against ${base.version} (${base.id})` : `Content (it replaces ${c.base_version}, the shipped default)`),
    lineDiff(base?.content, c.content),
  );
  status(`Change ${c.id} is ${c.status}.`, 'info');
}
