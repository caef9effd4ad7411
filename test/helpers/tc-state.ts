/** What tc shows inside a test namespace, for asserting state without going through tcqos. */
import { must } from './run.ts';

export async function qdiscs(netns: string): Promise<Array<{ kind: string; dev: string; handle: string }>> {
  return JSON.parse(await must('ip', ['netns', 'exec', netns, 'tc', '-j', 'qdisc', 'show'])) as Array<{ kind: string; dev: string; handle: string }>;
}

export async function linkNames(netns: string): Promise<string[]> {
  const links = JSON.parse(await must('ip', ['-n', netns, '-j', 'link', 'show'])) as Array<{ ifname: string }>;
  return links.map((link) => link.ifname);
}

/** Qdiscs that are not the kernel's defaults (handle 0:) — i.e. anything someone installed. */
export async function installedQdiscs(netns: string): Promise<string[]> {
  return (await qdiscs(netns)).filter((q) => q.handle !== '0:').map((q) => `${q.dev}:${q.kind}:${q.handle}`).sort();
}
