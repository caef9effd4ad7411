/**
 * `tcqos gc`: what a runtime's CNI GC does for records of pods that are gone, without the runtime
 * (containerd 1.x never sends GC): records whose network namespace is gone are dropped (a host end's
 * leftover ifb with them), unreadable record files too, and lock files nobody holds. Idempotent, and
 * safe beside a running ADD: an ADD holds its attachment's lock and its netns exists, so neither its
 * record nor its lock qualifies (src/attachment/collect.ts).
 */
import { collectGarbage } from '../attachment/collect.ts';
import type { Subcommand } from '../cli/runner.ts';
import { isStale, operatorLogger, registryFrom, STATE_DIR_HELP, STATE_DIR_OPTION } from './common.ts';
import { byAttachment } from './format.ts';

const USAGE = `Usage: tcqos gc [--dry-run] [--state-dir DIR]

Drops what pods that are gone left in the registry: attachments whose network namespace no longer
exists (STALE in "tcqos list": the runtime never sent DEL, e.g. after a crash), with the ifb a host
end leaves behind; registry files that are not records; lock files no process holds. Attachments
whose pod still exists are never touched. Running it again changes nothing.

  --dry-run         name what would be dropped, drop nothing
${STATE_DIR_HELP}

Exit status: 0 done (also when there was nothing to drop), 1 failed, 2 bad usage.
`;

export const gcCommand: Subcommand = {
  name: 'gc',
  summary: 'drop the records of pods that are gone (STALE in list) and unheld locks',
  usage: USAGE,
  options: { 'dry-run': { type: 'boolean' }, ...STATE_DIR_OPTION },
  async run(values, _positionals, io) {
    const registry = registryFrom(values, io);
    const before = registry.list();
    const stale = before.records.filter(isStale).sort(byAttachment);
    const name = (record: (typeof stale)[number]) => `${record.containerId}/${record.ifname}${record.pod ? ` (${record.pod.namespace}/${record.pod.name})` : ''}`;
    if (values['dry-run']) {
      for (const record of stale) io.writeStdout(`would drop ${name(record)}: network namespace ${record.netns} is gone\n`);
      for (const problem of before.problems) io.writeStdout(`would drop unreadable record ${problem}\n`);
      if (!stale.length && !before.problems.length) io.writeStdout('nothing to drop\n');
      return 0;
    }
    await collectGarbage(registry, '', undefined, operatorLogger('gc'));
    const left = new Set(registry.list().records.map((record) => `${record.containerId}\0${record.ifname}`));
    const dropped = stale.filter((record) => !left.has(`${record.containerId}\0${record.ifname}`));
    for (const record of dropped) io.writeStdout(`dropped ${name(record)}: network namespace ${record.netns} was gone\n`);
    for (const problem of before.problems) io.writeStdout(`dropped unreadable record ${problem}\n`);
    if (!stale.length && !before.problems.length) io.writeStdout('nothing to drop\n');
    const kept = stale.filter((record) => left.has(`${record.containerId}\0${record.ifname}`));
    for (const record of kept) io.writeStderr(`tcqos gc: could not drop ${name(record)} (the line above says why)\n`);
    return kept.length ? 1 : 0;
  },
};
