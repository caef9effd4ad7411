/**
 * The metric families tcqos exports and how each one reads AttachmentStats: names, types, HELP texts,
 * labels and values. No prom-client here: this is what the metrics mean, prometheus.ts only exposes them.
 *
 * Two scopes with the same seven measures: one series per configured class (the default class
 * included), and one per direction of an attachment. The direction totals are families of their own,
 * so `sum(tcqos_class_bytes_total)` never counts a byte twice.
 *
 * Configured rates are exposed in bytes per second although tcqos configures bits per second:
 * Prometheus wants base units (`promtool check metrics` flags `_bits_`; node_exporter likewise turns a
 * link's Mbit/s into `node_network_speed_bytes`), and so `rate(tcqos_class_bytes_total[1m]) /
 * tcqos_class_rate_bytes_per_second` is a class's use of its guarantee with no factor 8 to remember.
 */
import type { AttachmentStats, ClassStats, DirectionStats } from '../attachment/stats.ts';

export type LabelName = 'container_id' | 'interface' | 'direction' | 'class' | 'pod_namespace' | 'pod';
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
    },
  },
  {
    suffix: 'packets_total', type: 'counter', value: (m) => m.packets,
    help: {
      class: `Packets (frames on the wire) sent through the HTB class since it was created; ${SIDE}.`,
      direction: `Packets (frames on the wire) shaped in this direction of the attachment, all classes together; ${SIDE}.`,
    },
  },
  {
    suffix: 'drops_total', type: 'counter', value: (m) => m.drops,
    help: {
      class: "Frames the class's leaf queue (tbf) refused because it was full, each frame of a GSO packet counted; with those of queues a live update replaced.",
      direction: 'Frames dropped in this direction of the attachment: its classes\' drops, plus packets the HTB qdisc dropped before any class took them.',
    },
  },
  {
    suffix: 'overlimits_total', type: 'counter', value: (m) => m.overlimits,
    help: {
      class: 'Times the class held a frame back at its ceiling (its leaf queue short of tokens, or its HTB ceil bucket empty): at its limit, which alone is not loss.',
      direction: "Times this direction held a frame back: its classes' overlimits, plus the HTB qdisc's for its total (the direction's own rate reached).",
    },
  },
  {
    suffix: 'backlog_bytes', type: 'gauge', value: (m) => m.backlogBytes,
    help: {
      class: 'Bytes queued in the HTB class now, waiting to be sent.',
      direction: 'Bytes queued in this direction of the attachment now, all classes together.',
    },
  },
  {
    suffix: 'rate_bytes_per_second', type: 'gauge', value: (m) => m.rate / 8,
    help: {
      class: 'Rate the HTB class is guaranteed (configured), in bytes per second of frames on the wire (the configured bit/s divided by 8).',
      direction: 'Rate configured for this direction of the attachment as a whole, in bytes per second of frames on the wire (bit/s divided by 8).',
    },
  },
  {
    suffix: 'ceil_bytes_per_second', type: 'gauge', value: (m) => m.ceil / 8,
    help: {
      class: 'Most the HTB class may send, borrowing what other classes leave unused (configured ceil), in bytes per second (bit/s divided by 8).',
      direction: 'Most this direction of the attachment may send (configured ceil), in bytes per second (bit/s divided by 8).',
    },
  },
];

interface Row {
  readonly labels: Labels;
  readonly measured: Measured;
}

interface Scope {
  readonly name: 'class' | 'direction';
  readonly labelNames: readonly LabelName[];
  rows(stats: readonly AttachmentStats[]): Row[];
}

/** Prometheus reads an empty label value as no label: "" is how an attachment without a known pod says so. */
function directionLabels(attachment: AttachmentStats, direction: DirectionStats): Labels {
  return {
    container_id: attachment.containerId,
    interface: attachment.ifname,
    direction: direction.direction,
    pod_namespace: attachment.pod?.namespace ?? '',
    pod: attachment.pod?.name ?? '',
  };
}

function directionsOf(stats: readonly AttachmentStats[]): { attachment: AttachmentStats; direction: DirectionStats }[] {
  return stats.flatMap((attachment) => attachment.directions.map((direction) => ({ attachment, direction })));
}

const DIRECTION_LABELS: readonly LabelName[] = ['container_id', 'interface', 'direction', 'pod_namespace', 'pod'];

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
];

export const FAMILIES: readonly Family[] = SCOPES.flatMap((scope) =>
  MEASURES.map((measure) => ({
    name: `tcqos_${scope.name}_${measure.suffix}`,
    help: measure.help[scope.name],
    type: measure.type,
    labelNames: scope.labelNames,
    samples: (stats: readonly AttachmentStats[]) => scope.rows(stats).map((row) => ({ labels: row.labels, value: measure.value(row.measured) })),
  })),
);
