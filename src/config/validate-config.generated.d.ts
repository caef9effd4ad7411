// Types for the validator that scripts/gen-validator.ts generates from schema.ts.
export interface SchemaError {
  instancePath: string;
  keyword: string;
  params: Record<string, unknown>;
  message?: string;
}
export declare function validateConfig(data: unknown): boolean;
export declare namespace validateConfig {
  let errors: SchemaError[] | null | undefined;
}
