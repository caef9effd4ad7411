/** A configuration problem, tied to the field it concerns (e.g. "egress.classes[1].rate"). */
export class ConfigError extends Error {
  readonly field: string;
  constructor(field: string, problem: string) {
    super(field ? `${field}: ${problem}` : problem);
    this.field = field;
  }
}
