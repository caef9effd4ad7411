/**
 * A Policy as plain JSON and back (registry records, operator output): everything is JSON already
 * except the peers, which travel as their canonical CIDR text. policyFromJson(policyToJson(p))
 * equals p. The JSON is trusted to be what policyToJson wrote; only its CIDRs are parsed again.
 */
import { loadCidrSupport, parseCidrList } from './cidr.ts';
import { DIRECTIONS, type DirectionPolicy, type DirectionPolicyJson, type Policy, type PolicyJson } from './policy.ts';

export function policyToJson(policy: Policy): PolicyJson {
  const json: { -readonly [D in keyof PolicyJson]: DirectionPolicyJson } = {};
  for (const direction of DIRECTIONS) {
    const d = policy[direction];
    if (d) json[direction] = { ...d, rules: d.rules.map((rule) => ({ ...rule, peers: rule.peers.map((peer) => peer.text) })) };
  }
  return json;
}

export async function policyFromJson(json: PolicyJson): Promise<Policy> {
  if (DIRECTIONS.some((direction) => json[direction]?.rules.length)) await loadCidrSupport();
  const policy: { -readonly [D in keyof Policy]: DirectionPolicy } = {};
  for (const direction of DIRECTIONS) {
    const d = json[direction];
    if (d) {
      policy[direction] = {
        ...d,
        rules: d.rules.map((rule, index) => ({ ...rule, peers: parseCidrList(`${direction}.rules[${index}].peers`, rule.peers) })),
      };
    }
  }
  return policy;
}
