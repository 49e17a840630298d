import { Type } from '@sinclair/typebox';

// Apart from problem.ts so the CLI, which throws and classifies AppErrors, never loads TypeBox.
/** The problem+json shape, for route response schemas and the OpenAPI document. */
export const ProblemSchema = Type.Object(
  {
    type: Type.String({ format: 'uri' }),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    code: Type.String(),
    request_id: Type.String(),
    instance: Type.Optional(Type.String()),
  },
  { additionalProperties: true, title: 'Problem' },
);

/** The problem responses a route declares, by status: `response: { 200: Body, ...problemResponses(400, 404) }`. */
export function problemResponses<S extends number>(...statuses: readonly S[]): Record<S, typeof ProblemSchema> {
  return Object.fromEntries(statuses.map((status) => [status, ProblemSchema])) as Record<S, typeof ProblemSchema>;
}
