/**
 * Kubernetes label selectors (metav1.LabelSelector), as NetworkPolicy's podSelector uses them:
 * matchLabels and matchExpressions must all hold; `{}` selects everything. Checked once when a
 * policy arrives (what the CRD schema cannot say: In and NotIn need values, Exists and
 * DoesNotExist take none), then matched against pods' labels.
 */
import { ConfigError } from '../config/errors.ts';

export type SelectorOperator = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';

export interface SelectorRequirement {
  readonly key: string;
  readonly operator: SelectorOperator;
  readonly values?: readonly string[];
}

export interface LabelSelector {
  readonly matchLabels?: Readonly<Record<string, string>>;
  readonly matchExpressions?: readonly SelectorRequirement[];
}

const OPERATORS: readonly SelectorOperator[] = ['In', 'NotIn', 'Exists', 'DoesNotExist'];

/** The selector at `field`, checked; throws ConfigError naming the field. */
export function readSelector(value: unknown, field: string): LabelSelector {
  if (!isObject(value)) throw new ConfigError(field, 'must be an object (a label selector; {} selects every pod of the namespace)');
  const { matchLabels, matchExpressions, ...rest } = value;
  const unknown = Object.keys(rest)[0];
  if (unknown !== undefined) throw new ConfigError(`${field}.${unknown}`, 'unknown key (a label selector has matchLabels and matchExpressions)');
  if (matchLabels !== undefined) {
    if (!isObject(matchLabels)) throw new ConfigError(`${field}.matchLabels`, 'must be an object of label values');
    for (const [key, label] of Object.entries(matchLabels)) {
      if (typeof label !== 'string') throw new ConfigError(`${field}.matchLabels.${key}`, 'must be a string');
    }
  }
  if (matchExpressions !== undefined) {
    if (!Array.isArray(matchExpressions)) throw new ConfigError(`${field}.matchExpressions`, 'must be a list');
    matchExpressions.forEach((expression, index) => checkRequirement(expression, `${field}.matchExpressions[${index}]`));
  }
  return value as LabelSelector;
}

function checkRequirement(value: unknown, at: string): void {
  if (!isObject(value)) throw new ConfigError(at, 'must be an object {key, operator, values}');
  if (typeof value['key'] !== 'string' || value['key'] === '') throw new ConfigError(`${at}.key`, 'must be a label key');
  const operator = value['operator'];
  if (!OPERATORS.includes(operator as SelectorOperator)) throw new ConfigError(`${at}.operator`, `must be one of ${OPERATORS.join(', ')}`);
  const values = value['values'];
  if (values !== undefined && !(Array.isArray(values) && values.every((item) => typeof item === 'string'))) throw new ConfigError(`${at}.values`, 'must be a list of strings');
  const count = (values as unknown[] | undefined)?.length ?? 0;
  if ((operator === 'In' || operator === 'NotIn') && count === 0) throw new ConfigError(`${at}.values`, `must not be empty for operator ${operator as string}`);
  if ((operator === 'Exists' || operator === 'DoesNotExist') && count > 0) throw new ConfigError(`${at}.values`, `must be empty for operator ${operator as string}`);
}

/** Whether `labels` satisfy the selector (every matchLabels entry and every expression). */
export function selects(selector: LabelSelector, labels: Readonly<Record<string, string>>): boolean {
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    if (labels[key] !== value) return false;
  }
  for (const { key, operator, values = [] } of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, key);
    switch (operator) {
      case 'In':
        if (!has || !values.includes(labels[key]!)) return false;
        break;
      case 'NotIn':
        if (has && values.includes(labels[key]!)) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
    }
  }
  return true;
}

/** The selector as kubectl prints it: "app=web,tier in (a,b)"; "(all pods)" for {}. */
export function describeSelector(selector: LabelSelector): string {
  const parts = [
    ...Object.entries(selector.matchLabels ?? {}).map(([key, value]) => `${key}=${value}`),
    ...(selector.matchExpressions ?? []).map(({ key, operator, values = [] }) => {
      switch (operator) {
        case 'In':
          return `${key} in (${values.join(',')})`;
        case 'NotIn':
          return `${key} notin (${values.join(',')})`;
        case 'Exists':
          return key;
        case 'DoesNotExist':
          return `!${key}`;
      }
    }),
  ];
  return parts.length ? parts.join(',') : '(all pods)';
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
