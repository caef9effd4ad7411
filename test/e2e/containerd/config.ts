/**
 * containerd's config.toml for a private daemon: everything (socket, root, state, runc's root) in
 * one temp dir, the CRI plugin set up for this machine, and the plugins that would touch shared
 * places (/opt/containerd) or are of no use here turned off.
 */

import { join } from 'node:path';

export interface DaemonPaths {
  readonly socket: string;
  readonly root: string;
  readonly state: string;
  readonly runcRoot: string;
  readonly cniBinDir: string;
  readonly cniConfDir: string;
}

/** Where everything of one private daemon lives inside its dir. */
export function daemonPaths(dir: string): DaemonPaths {
  return {
    socket: join(dir, 'containerd.sock'),
    root: join(dir, 'root'),
    state: join(dir, 'state'),
    runcRoot: join(dir, 'runc'),
    cniBinDir: join(dir, 'cni-bin'),
    cniConfDir: join(dir, 'cni-conf'),
  };
}

const DISABLED_PLUGINS = [
  'io.containerd.internal.v1.opt', // would create /opt/containerd
  'io.containerd.snapshotter.v1.aufs',
  'io.containerd.snapshotter.v1.btrfs',
  'io.containerd.snapshotter.v1.devmapper',
  'io.containerd.snapshotter.v1.zfs',
  'io.containerd.tracing.processor.v1.otlp',
  'io.containerd.internal.v1.tracing',
];

function quoted(text: string): string {
  return JSON.stringify(text); // a TOML basic string: JSON escaping is valid TOML for these paths
}

export function containerdConfig(paths: DaemonPaths, sandboxImage: string, snapshotter: string): string {
  const cri = '[plugins."io.containerd.grpc.v1.cri"';
  return `version = 2
root = ${quoted(paths.root)}
state = ${quoted(paths.state)}
disabled_plugins = ${JSON.stringify(DISABLED_PLUGINS)}

[grpc]
  address = ${quoted(paths.socket)}

[ttrpc]
  address = ${quoted(`${paths.socket}.ttrpc`)}

${cri}]
  sandbox_image = ${quoted(sandboxImage)}
  # This VM lacks CAP_SYS_RESOURCE: the sandbox's oom_score_adj of -998 would make runc fail.
  restrict_oom_score_adj = true
  # The pods' netns are bind-mounted in our state dir, not /var/run/netns.
  netns_mounts_under_state_dir = true
  # containerd runs in the runner namespace: its stream server listens on that loopback only.
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  disable_apparmor = true

${cri}.containerd]
  snapshotter = ${quoted(snapshotter)}
  default_runtime_name = "runc"

${cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

${cri}.containerd.runtimes.runc.options]
  BinaryName = "/usr/sbin/runc"
  Root = ${quoted(paths.runcRoot)}

${cri}.cni]
  bin_dir = ${quoted(paths.cniBinDir)}
  conf_dir = ${quoted(paths.cniConfDir)}
  max_conf_num = 1
`;
}
