/**
 * The metric families tcqos exports and how each one reads AttachmentStats: names, types, HELP texts,
 * labels and values. No prom-client here: this is what the metrics mean, prometheus.ts only exposes them.
 *
 * Two scopes with the same seven measures: one series per configured class (the default class
 * included), and one per direction of an attachment. The direction totals are families of their own,
 * so `sum(tcqos_class_bytes_total)` never counts a byte twice. Then four per uplink: its capacity,
 * what may be guaranteed on it, what is, and by how many attachments.
 *
 * Configured rates are exposed in bytes per second although tcqos configures bits per second:
 * Prometheus wants base units (`promtool check metrics` flags `_bits_`; node_exporter likewise turns a
 * link's Mbit/s into `node_network_speed_bytes`), and so `rate(tcqos_class_bytes_total[1m]) /
 * tcqos_class_rate_bytes_per_second` is a class's use of its guarantee with no factor 8 to remember.
 */
import type { AttachmentStats, ClassStats, DirectionStats } from '../attachment/stats.ts';

export type LabelName = 'container_id' | 'interface' | 'direction' | 'class' | 'pod_namespace' | 'pod' | 'uplink';
export type Labels = Readonly<Partial<Record<LabelName, string>>>;

export interface Sample {
  readonly labels: Labels;
  readonly value: number;
}

export interface Family {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge';
  /** The same names on every series of a family (Prometheus' rule); an unknown pod is "". */
  readonly labelNames: readonly LabelName[];
  samples(stats: readonly AttachmentStats[]): Sample[];
}

/** The numbers a class and a direction both have. */
type Measured = Pick<ClassStats & DirectionStats, 'bytes' | 'packets' | 'drops' | 'overlimits' | 'backlogBytes' | 'rate' | 'ceil'>;

interface Measure {
  readonly suffix: string;
  readonly type: Family['type'];
  readonly value: (measured: Measured) => number;
  readonly help: Readonly<Record<Scope['name'], string>>;
}

const WIRE = 'counted as tc counts them: whole frames with their Ethernet header (no preamble, no FCS)';
const SIDE = 'egress is what the pod sends, ingress what it receives';

const MEASURES: readonly Measure[] = [
  {
    suffix: 'bytes_total', type: 'counter', value: (m) => m.bytes,
    help: {
      class: `Bytes sent through the HTB class since it was created, ${WIRE}; ${SIDE}.`,
      direction: `Bytes shaped in this direction of the attachment, all classes together, ${WIRE}; ${SIDE}.`,
      uplink_class: `Bytes of the attachment's class on its enforced uplink's tree (where it contends with the node's other pods), ${WIRE}; ${SIDE}.`,
    },
  },
  {
    suffix: 'packets_total', type: 'counter', value: (m) => m.packets,
    help: {
      class: `Packets (frames on the wire) sent through the HTB class since it was created; ${SIDE}.`,
      direction: `Packets (frames on the wire) shaped in this direction of the attachment, all classes together; ${SIDE}.`,
      uplink_class: `Packets (frames on the wire) through the attachment's class on its enforced uplink's tree; ${SIDE}.`,
    },
  },
  {
    suffix: 'drops_total', type: 'counter', value: (m) => m.drops,
    help: {
      class: "Frames the class's leaf queue (tbf) refused because it was full, each frame of a GSO packet counted; with those of queues a live update replaced.",
      direction: 'Frames dropped in this direction of the attachment: its classes\' drops, plus packets the HTB qdisc dropped before any class took them.',
      uplink_class: "Frames the leaf queue of the attachment's class on the uplink's tree refused because it was full.",
    },
  },
  {
    suffix: 'overlimits_total', type: 'counter', value: (m) => m.overlimits,
    help: {
      class: 'Times the class held a frame back at its ceiling (its leaf queue short of tokens, or its HTB ceil bucket empty): at its limit, which alone is not loss.',
      direction: "Times this direction held a frame back: its classes' overlimits, plus the HTB qdisc's for its total (the direction's own rate reached).",
      uplink_class: "Times the attachment's class on the uplink's tree held a frame back at its ceiling (the attachment's cap, enforced outside the pod).",
    },
  },
  {
    suffix: 'backlog_bytes', type: 'gauge', value: (m) => m.backlogBytes,
    help: {
      class: 'Bytes queued in the HTB class now, waiting to be sent.',
      direction: 'Bytes queued in this direction of the attachment now, all classes together.',
      uplink_class: "Bytes queued in the attachment's class on the uplink's tree now.",
    },
  },
  {
    suffix: 'rate_bytes_per_second', type: 'gauge', value: (m) => m.rate / 8,
    help: {
      class: 'Rate the HTB class is guaranteed (configured), in bytes per second of frames on the wire (the configured bit/s divided by 8).',
      direction: 'Rate configured for this direction of the attachment as a whole, in bytes per second of frames on the wire (bit/s divided by 8).',
      uplink_class: "Rate the attachment is guaranteed on the uplink (its guaranteed rate), in bytes per second (bit/s divided by 8).",
    },
  },
  {
    suffix: 'ceil_bytes_per_second', type: 'gauge', value: (m) => m.ceil / 8,
    help: {
      class: 'Most the HTB class may send, borrowing what other classes leave unused (configured ceil), in bytes per second (bit/s divided by 8).',
      direction: 'Most this direction of the attachment may send (configured ceil), in bytes per second (bit/s divided by 8).',
      uplink_class: "Most the attachment may send through the uplink (its ceil, at most the uplink's capacity), in bytes per second (bit/s divided by 8).",
    },
  },
];

interface Row {
  readonly labels: Labels;
  readonly measured: Measured;
}

interface Scope {
  readonly name: 'class' | 'direction' | 'uplink_class';
  readonly labelNames: readonly LabelName[];
  rows(stats: readonly AttachmentStats[]): Row[];
}

/**
 * Prometheus reads an empty label value as no label: "" is how an attachment without a known pod,
 * or without an uplink, says so.
 */
function directionLabels(attachment: AttachmentStats, direction: Pick<DirectionStats, 'direction'>): Labels {
  return {
    container_id: attachment.containerId,
    interface: attachment.ifname,
    direction: direction.direction,
    pod_namespace: attachment.pod?.namespace ?? '',
    pod: attachment.pod?.name ?? '',
    uplink: attachment.uplink?.name ?? '',
  };
}

function directionsOf(stats: readonly AttachmentStats[]): { attachment: AttachmentStats; direction: DirectionStats }[] {
  return stats.flatMap((attachment) => attachment.directions.map((direction) => ({ attachment, direction })));
}

const DIRECTION_LABELS: readonly LabelName[] = ['container_id', 'interface', 'direction', 'pod_namespace', 'pod', 'uplink'];

const SCOPES: readonly Scope[] = [
  {
    name: 'class',
    labelNames: [...DIRECTION_LABELS, 'class'],
    rows: (stats) =>
      directionsOf(stats).flatMap(({ attachment, direction }) =>
        direction.classes.map((cls) => ({ labels: { ...directionLabels(attachment, direction), class: cls.name }, measured: cls })),
      ),
  },
  {
    name: 'direction',
    labelNames: DIRECTION_LABELS,
    rows: (stats) => directionsOf(stats).map(({ attachment, direction }) => ({ labels: directionLabels(attachment, direction), measured: direction })),
  },
  {
    // Families of their own (tcqos_uplink_class_*): the same traffic counted again where the pods
    // contend, so no sum over a pod's own families counts a byte twice.
    name: 'uplink_class',
    labelNames: DIRECTION_LABELS,
    rows: (stats) =>
      stats.flatMap((attachment) => (attachment.onUplink ?? []).map((onUplink) => ({ labels: directionLabels(attachment, onUplink), measured: onUplink }))),
  },
];

const ATTACHMENT_FAMILIES: readonly Family[] = SCOPES.flatMap((scope) =>
  MEASURES.map((measure) => ({
    name: `tcqos_${scope.name}_${measure.suffix}`,
    help: measure.help[scope.name],
    type: measure.type,
    labelNames: scope.labelNames,
    samples: (stats: readonly AttachmentStats[]) => scope.rows(stats).map((row) => ({ labels: row.labels, value: measure.value(row.measured) })),
  })),
);

/** Each uplink named by the attachments read (those whose pod still exists), with what they hold on it. */
function uplinksOf(stats: readonly AttachmentStats[]): Array<{ name: string; capacity: number; reserve: number; attachments: number; guaranteed: Record<string, number> }> {
  const uplinks = new Map<string, { name: string; capacity: number; reserve: number; attachments: number; guaranteed: Record<string, number> }>();
  for (const attachment of stats) {
    if (!attachment.uplink) continue;
    const { name, capacity, reserve = 0 } = attachment.uplink;
    const entry = uplinks.get(name) ?? { name, capacity, reserve, attachments: 0, guaranteed: { egress: 0, ingress: 0 } };
    entry.attachments++;
    for (const direction of attachment.directions) entry.guaranteed[direction.direction] = (entry.guaranteed[direction.direction] ?? 0) + direction.rate;
    uplinks.set(name, entry);
  }
  return [...uplinks.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
}

/**
 * Per uplink (the configuration's "uplink": usually the macvlan master), what admission weighs: its
 * capacity, what pods may be guaranteed on it (less the reserve), and what its attachments are
 * guaranteed per direction. The traffic itself: `sum by (uplink, direction)` of the direction
 * families, which carry an `uplink` label.
 */
const UPLINK_FAMILIES: readonly Family[] = [
  {
    name: 'tcqos_uplink_capacity_bytes_per_second',
    help: "The uplink's capacity as configured (uplink.capacity), in bytes per second of frames on the wire (bit/s divided by 8).",
    type: 'gauge',
    labelNames: ['uplink'],
    samples: (stats) => uplinksOf(stats).map((u) => ({ labels: { uplink: u.name }, value: u.capacity / 8 })),
  },
  {
    name: 'tcqos_uplink_guaranteeable_bytes_per_second',
    help: 'What attachments may be guaranteed on the uplink together: its capacity less uplink.reserve, in bytes per second; admission refuses beyond it.',
    type: 'gauge',
    labelNames: ['uplink'],
    samples: (stats) => uplinksOf(stats).map((u) => ({ labels: { uplink: u.name }, value: (u.capacity - u.reserve) / 8 })),
  },
  {
    name: 'tcqos_uplink_guaranteed_bytes_per_second',
    help: "The guaranteed rates of the uplink's attachments whose pod still exists, added up per direction, in bytes per second (bit/s divided by 8).",
    type: 'gauge',
    labelNames: ['uplink', 'direction'],
    samples: (stats) =>
      uplinksOf(stats).flatMap((u) => Object.entries(u.guaranteed).map(([direction, rate]) => ({ labels: { uplink: u.name, direction }, value: rate / 8 }))),
  },
  {
    name: 'tcqos_uplink_attachments',
    help: 'Attachments whose pod still exists that name the uplink.',
    type: 'gauge',
    labelNames: ['uplink'],
    samples: (stats) => uplinksOf(stats).map((u) => ({ labels: { uplink: u.name }, value: u.attachments })),
  },
];

export const FAMILIES: readonly Family[] = [...ATTACHMENT_FAMILIES, ...UPLINK_FAMILIES];
