// Verifies in the page that a ledger record is in the tenant's log: RFC 8785 canonical JSON of the
// record, its RFC 9162 leaf hash, the inclusion proof up to the root of a signed checkpoint, and
// the checkpoint's Ed25519 signature (C2SP signed note) against the server's verifier keys.

const enc = new TextEncoder();

const b64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
const hex = (bytes) => [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
const equal = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

async function sha256(...parts) {
  const total = parts.reduce((n, p) => n + p.length, 0);
  const buf = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    buf.set(p, at);
    at += p.length;
  }
  return new Uint8Array(await crypto.subtle.digest('SHA-256', buf));
}

/** RFC 8785: sorted keys (UTF-16 order), ECMAScript number and string forms, no whitespace. */
export function canonicalize(value) {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalize).join(',')}]`;
  const keys = Object.keys(value)
    .filter((k) => value[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalize(value[k])}`).join(',')}}`;
}

export const leafHash = (record) => sha256(new Uint8Array([0]), enc.encode(canonicalize(record)));
const nodeHash = (left, right) => sha256(new Uint8Array([1]), left, right);

/** RFC 9162 2.1.3.2: the root an inclusion proof leads to. */
export async function rootFromProof(index, treeSize, leaf, proof) {
  if (index >= treeSize) throw new Error(`index ${index} is not below tree size ${treeSize}`);
  let fn = index;
  let sn = treeSize - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) throw new Error('the proof is longer than the path');
    if (fn % 2 === 1 || fn === sn) {
      r = await nodeHash(p, r);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw new Error('the proof is shorter than the path');
  return r;
}

/** Checks a C2SP note's Ed25519 signature against one of the vkeys (`name+keyid+base64(0x01||key)`). */
export async function verifyNote(note, vkeys) {
  const split = note.indexOf('\n\n');
  if (split === -1) throw new Error('the checkpoint note has no signature block');
  const text = note.slice(0, split + 1);
  const lines = note
    .slice(split + 2)
    .split('\n')
    .filter((l) => l.startsWith('— '));
  for (const vkey of vkeys) {
    // The base64 key may itself hold '+': split at the first two only.
    const first = vkey.indexOf('+');
    const second = vkey.indexOf('+', first + 1);
    const [name, keyIdHex, keyB64] = [vkey.slice(0, first), vkey.slice(first + 1, second), vkey.slice(second + 1)];
    const keyBytes = b64(keyB64);
    if (keyBytes[0] !== 1) continue;
    for (const line of lines) {
      const [, signer, sigB64] = line.split(' ');
      if (signer !== name) continue;
      const sig = b64(sigB64);
      if (hex(sig.slice(0, 4)) !== keyIdHex) continue;
      const key = await crypto.subtle.importKey('raw', keyBytes.slice(1), { name: 'Ed25519' }, false, ['verify']);
      if (await crypto.subtle.verify({ name: 'Ed25519' }, key, sig.slice(4), enc.encode(text))) return name;
    }
  }
  throw new Error('no verifier key signed this checkpoint');
}

/**
 * The whole check for one ledger entry. `fetchJson(path)` calls the API. Reports each step through
 * `step(text)`; returns what was proved, or throws naming the step that failed.
 */
export async function verifyInclusion(fetchJson, log, index, expectedRecord, step) {
  step('Reading a fresh signed checkpoint…');
  const cp = await fetchJson(`/ledger/checkpoint?log=${log}&fresh=true`);
  const signer = await verifyNote(cp.note, cp.verifier_keys);
  step(`Checkpoint of ${cp.tree_size} entries signed by ${signer}: signature valid. Reading entry ${index}…`);
  const { entries } = await fetchJson(`/ledger/entries?log=${log}&start=${index}&end=${index + 1}`);
  const entry = entries[0];
  if (!entry) throw new Error(`entry ${index} is not in the log`);
  const leaf = await leafHash(entry.record);
  if (!equal(leaf, b64(entry.leaf_hash))) throw new Error('the entry does not hash to its stored leaf hash');
  if (expectedRecord) expectedRecord(entry.record);
  step('Leaf hash recomputed from the record. Checking the inclusion proof…');
  const proof = await fetchJson(`/ledger/proof/inclusion?log=${log}&index=${index}&tree_size=${cp.tree_size}`);
  const root = await rootFromProof(index, cp.tree_size, leaf, proof.proof.map(b64));
  if (!equal(root, b64(cp.root_hash))) throw new Error('the proof does not lead to the signed root');
  return { treeSize: cp.tree_size, root: cp.root_hash, signer, proofLength: proof.proof.length, record: entry.record };
}
