import type { Tx } from '../../platform/db/database.js';
import { keyLineage } from '../auth/store.js';
import type { Principal } from '../../platform/auth/principal.js';

/**
 * Who stands behind one side of an approval: the acting key (or principal name), the identity it
 * acts for, and the identities and keys that minted it, transitively. A console session (issue 25)
 * will be a principal with an identity vouched for by the admin gateway and nobody above it.
 */
export interface Lineage {
  readonly key: string;
  readonly identity: string;
  /** Every identity behind the key: its own and each minter's up the created_by chain. */
  readonly people: ReadonlySet<string>;
  /** The key and every key that minted it, transitively. */
  readonly keys: ReadonlySet<string>;
}

/** Why an approval does not count as a second person's. */
export type TwoPersonRefusal =
  /** the author's key or identity */
  | 'self_approval'
  /** the approving key descends from a key of the author's (the author minted it, directly or not) */
  | 'minted_by_author'
  /** the author's key descends from a key of the approver's */
  | 'author_minted_by_approver'
  /** both keys descend from one identity, who would be author and approver at once */
  | 'common_minter'
  /** an identity behind this key is already behind an earlier approval of the change */
  | 'same_person_approved';

/** The lineage of the key (or non-key principal) `key` acting as `identity`, read in the tenant's transaction. */
export async function lineageOf(tx: Tx, key: string, identity: string): Promise<Lineage> {
  const chain = await keyLineage(tx, key);
  return { key, identity, people: new Set([identity, ...chain.map((k) => k.owner)]), keys: new Set([key, ...chain.map((k) => k.id)]) };
}

export const principalLineage = (tx: Tx, principal: Principal): Promise<Lineage> => lineageOf(tx, principal.keyId ?? principal.subject, principal.subject);

const overlaps = (a: ReadonlySet<string>, b: ReadonlySet<string>): boolean => [...a].some((x) => b.has(x));

/**
 * The two-person rule: an approval counts only from someone other than the author, where a key
 * stands for its own identity and for everyone who minted it. Nobody approves their own change
 * through a key they minted, through a key that minted theirs, or twice through two such keys.
 */
export function twoPersonRefusal(author: Lineage, approver: Lineage, earlier: readonly Lineage[]): TwoPersonRefusal | undefined {
  if (approver.key === author.key || approver.identity === author.identity) return 'self_approval';
  if (approver.people.has(author.identity) || approver.keys.has(author.key)) return 'minted_by_author';
  if (author.people.has(approver.identity) || author.keys.has(approver.key)) return 'author_minted_by_approver';
  if (overlaps(author.people, approver.people)) return 'common_minter';
  if (earlier.some((e) => overlaps(e.people, approver.people))) return 'same_person_approved';
  return undefined;
}

export const TWO_PERSON_DETAIL: Record<TwoPersonRefusal, string> = {
  self_approval: 'the author of a change cannot approve it; another person must',
  minted_by_author: "this key was minted by the change's author (directly or through other keys), so its approval is the author's own",
  author_minted_by_approver: "the change's author holds a key this approver minted, so the approver is the author",
  common_minter: 'the author and this approver hold keys minted by the same person',
  same_person_approved: 'a person behind this key has already approved the change through another key',
};
