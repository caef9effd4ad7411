/**
 * The tc vocabulary: what a qdisc, an HTB class, a u32 filter and a link look like once read back
 * from the kernel. Shared by planning (pure) and by the readers in src/netns (mechanism).
 */

export interface LinkInfo {
  readonly name: string;
  readonly ifindex: number;
  /** The ifindex of the device's other half: a veth's peer, a macvlan's master (in the namespace `ip` names by link_netnsid). */
  readonly linkIndex: number | undefined;
  /** Its MAC address. */
  readonly address: string | undefined;
  readonly mtu: number;
  readonly txqlen: number;
  readonly up: boolean;
  /** "ifb", "macvlan", "veth"... (undefined for plain devices) */
  readonly kind: string | undefined;
  /** Kind of the root qdisc ("noqueue" until someone installs one). */
  readonly rootQdiscKind: string;
}

/** Counters the kernel keeps per qdisc and per class. */
export interface TcCounters {
  readonly bytes: number;
  readonly packets: number;
  readonly drops: number;
  readonly overlimits: number;
  readonly backlogBytes: number;
}

export interface QdiscInfo {
  readonly dev: string;
  readonly kind: string;
  /** "7c05:" style */
  readonly handle: string;
  readonly root: boolean;
  readonly ingress: boolean;
  /** The class a leaf qdisc hangs under ("7c05:10"); undefined for root and ingress qdiscs. */
  readonly parent: string | undefined;
  readonly defaultClass: string | undefined;
  /** A tbf's queue limit in bytes. */
  readonly limit: number | undefined;
  /** A tbf's rate, bits per second. */
  readonly rate: number | undefined;
  /** A tbf's bucket, bytes. */
  readonly burst: number | undefined;
  readonly counters: TcCounters;
}

export interface ClassInfo {
  readonly id: string;
  readonly parent: string | undefined;
  readonly prio: number | undefined;
  readonly quantum: number | undefined;
  /** bits per second, as tc prints them (rounded to its display precision) */
  readonly rate: number | undefined;
  readonly ceil: number | undefined;
  /** bytes */
  readonly burst: number | undefined;
  readonly cburst: number | undefined;
  /** Present when read with statistics (`tc -s`). */
  readonly counters: TcCounters | undefined;
}

/** One u32 match word: (packet word at `offset` from the network header) & mask == value. */
export interface U32Key {
  readonly value: number;
  readonly mask: number;
  readonly offset: number;
}

export interface FilterInfo {
  readonly pref: number;
  readonly protocol: string;
  readonly kind: string;
  readonly flowid: string | undefined;
  readonly keys: readonly U32Key[];
  /** Device a mirred action redirects to, if any. */
  readonly redirectTo: string | undefined;
  /** A bpf filter's program tag (what the kernel computed from its instructions). */
  readonly programTag?: string;
}

/** One shaped device as read back: its root qdisc, the queues under its classes, classes, filters. */
export interface ObservedTree {
  /** The root qdisc of the device (undefined when the device is missing). */
  readonly qdisc: QdiscInfo | undefined;
  readonly leaves: readonly QdiscInfo[];
  readonly classes: readonly ClassInfo[];
  readonly filters: readonly FilterInfo[];
}

/** Everything of one attachment's site as read back from its netns: an interface, its root tree, its ifb. */
export interface ObservedAttachment {
  readonly iface: LinkInfo | undefined;
  readonly ifb: LinkInfo | undefined;
  /** The tree at the interface's root. */
  readonly onInterface: ObservedTree;
  readonly ingressQdisc: QdiscInfo | undefined;
  readonly redirects: readonly FilterInfo[];
  /** The tree on the ifb fed from the interface's ingress. */
  readonly onIfb: ObservedTree;
}
