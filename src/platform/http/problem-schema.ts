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
