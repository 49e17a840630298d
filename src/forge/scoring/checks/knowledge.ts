import type { AnswerCheckSpec, QuizCheckSpec, QuizQuestionSpec } from '../../templates/checks.js';
import { fail, pass, type CheckContext, type CheckVerdict } from './context.js';

// Knowledge checks grade what the learner submitted with the lab (answers[criterion id]); they
// run nothing in the lab.

export function answerCheck(spec: AnswerCheckSpec, ctx: CheckContext): CheckVerdict {
  const given = ctx.answers[ctx.criterionId];
  if (typeof given !== 'string' || given.trim() === '') return fail('no answer was submitted');
  const answer = given.trim();
  const fold = (s: string) => (spec.case_sensitive ? s : s.toLowerCase());
  let right: boolean;
  if (spec.exact !== undefined) right = spec.exact.some((e) => fold(e.trim()) === fold(answer));
  else if (spec.regex !== undefined) right = new RegExp(`^(?:${spec.regex})$`, spec.case_sensitive ? '' : 'i').test(answer);
  else {
    const expected = ctx.variables[spec.variable ?? ''];
    right = expected !== undefined && fold(expected) === fold(answer);
  }
  return right ? pass('the answer is right') : fail('the answer is wrong');
}

function questionRight(q: QuizQuestionSpec, given: unknown): boolean {
  if (q.kind === 'choice') {
    const picked = Array.isArray(given) ? given : [given];
    if (!picked.every((p) => Number.isInteger(p))) return false;
    const set = new Set(picked as number[]);
    return set.size === q.correct.length && q.correct.every((c) => set.has(c));
  }
  if (given === null || typeof given !== 'object' || Array.isArray(given)) return false;
  const map = given as Record<string, unknown>;
  const lefts = Object.keys(q.pairs);
  return Object.keys(map).length === lefts.length && lefts.every((l) => map[l] === q.pairs[l]);
}

export function quizCheck(spec: QuizCheckSpec, ctx: CheckContext): CheckVerdict {
  const given = ctx.answers[ctx.criterionId];
  const byQuestion = given !== null && typeof given === 'object' && !Array.isArray(given) ? (given as Record<string, unknown>) : {};
  const wrong = spec.questions.filter((q) => !questionRight(q, byQuestion[q.id])).map((q) => q.id);
  const right = spec.questions.length - wrong.length;
  const needed = spec.min_correct ?? spec.questions.length;
  const detail = `${right}/${spec.questions.length} questions right${wrong.length ? ` (wrong or missing: ${wrong.join(', ')})` : ''}, ${needed} needed`;
  return right >= needed ? pass(detail) : fail(detail);
}
