/** What tc shows inside a test namespace, for asserting state without going through tcqos. */
import { must } from './run.ts';

interface Qdisc {
  kind: string;
  dev: string;
  handle: string;
  root?: boolean;
  parent?: string;
}

export async function qdiscs(netns: string): Promise<Qdisc[]> {
  return JSON.parse(await must('ip', ['netns', 'exec', netns, 'tc', '-j', 'qdisc', 'show'])) as Qdisc[];
}

export async function linkNames(netns: string): Promise<string[]> {
  const links = JSON.parse(await must('ip', ['-n', netns, '-j', 'link', 'show'])) as Array<{ ifname: string }>;
  return links.map((link) => link.ifname);
}

/** Root and ingress qdiscs that are not the kernel's defaults (handle 0:): what someone installed. */
export async function installedQdiscs(netns: string): Promise<string[]> {
  return (await qdiscs(netns))
    .filter((q) => q.handle !== '0:' && (q.root === true || q.parent === 'ffff:fff1'))
    .map((q) => `${q.dev}:${q.kind}:${q.handle}`)
    .sort();
}
