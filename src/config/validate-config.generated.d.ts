// Types for the validators that scripts/gen-validator.ts generates from schema.ts.
export interface SchemaError {
  instancePath: string;
  keyword: string;
  params: Record<string, unknown>;
  message?: string;
}
export interface Validator {
  (data: unknown): boolean;
  errors?: SchemaError[] | null | undefined;
}
/** The network configuration (configSchema). */
export declare const validateConfig: Validator;
/** The tcqos.io/policy annotation's document (policyAnnotationSchema). */
export declare const validatePolicyAnnotation: Validator;
/** runtimeConfig.bandwidth on its own (runtimeBandwidthSchema). */
export declare const validateRuntimeBandwidth: Validator;
