/** Stable error codes of the lab runtime; callers map them to problem+json types. */
export type LabErrorCode =
  'lab_spec_invalid' | 'lab_exists' | 'lab_not_found' | 'device_not_found' | 'lab_create_failed' | 'lab_command_failed' | 'lab_path_refused';

export class LabRuntimeError extends Error {
  readonly code: LabErrorCode;
  constructor(code: LabErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LabRuntimeError';
    this.code = code;
  }
}
