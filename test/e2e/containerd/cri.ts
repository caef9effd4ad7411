/**
 * A small CRI client (what the kubelet does for a pod sandbox) over containerd's gRPC socket, with
 * the runtime.v1 subset in cri.proto. Every call has a deadline, so a hung runtime fails the test.
 */
import { Client, credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { loadSync, type MethodDefinition } from '@grpc/proto-loader';
import { fileURLToPath } from 'node:url';

const PROTO = fileURLToPath(new URL('cri.proto', import.meta.url));
const SERVICE = 'runtime.v1.RuntimeService';
const CALL_DEADLINE_MS = 90_000;

export interface PodRequest {
  readonly name: string;
  readonly namespace: string;
  readonly uid: string;
  readonly annotations?: Readonly<Record<string, string>>;
  readonly labels?: Readonly<Record<string, string>>;
}

/** Where a node puts a pod's logs and cgroups (the kubelet's choices). */
export interface PodPlacement {
  readonly logDirectory: string;
  /** cgroupfs path under which runc creates the sandbox's cgroup, e.g. /kubepods/pod<uid>. */
  readonly cgroupParent: string;
}

export interface SandboxStatus {
  readonly id: string;
  readonly state: 'SANDBOX_READY' | 'SANDBOX_NOTREADY';
  /** The pod's IP, as the CNI result gave it to containerd. */
  readonly ip: string;
  /** The pause process (host pid namespace). */
  readonly pid: number;
  /** The pod's network namespace, as containerd mounted it (under its state dir here). */
  readonly netnsPath: string;
}

interface RuntimeVersion {
  readonly runtime_name: string;
  readonly runtime_version: string;
  readonly runtime_api_version: string;
}

/** The slice of containerd's verbose sandbox info read here. */
interface VerboseInfo {
  readonly pid?: number;
  readonly runtimeSpec?: { linux?: { namespaces?: Array<{ type: string; path?: string }> } };
}

const methods = (() => {
  const definition = loadSync(PROTO, { keepCase: true, longs: String, enums: String, defaults: true });
  const service = definition[SERVICE] as Record<string, MethodDefinition<object, object>>;
  return service;
})();

export class CriClient {
  private readonly client: Client;

  constructor(socket: string) {
    this.client = new Client(`unix://${socket}`, credentials.createInsecure());
  }

  private call<T>(method: string, request: object): Promise<T> {
    const definition = methods[method];
    if (!definition) throw new Error(`${method} is not in cri.proto`);
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(
        definition.path,
        definition.requestSerialize,
        definition.responseDeserialize,
        request,
        new Metadata(),
        { deadline: Date.now() + CALL_DEADLINE_MS },
        (error: ServiceError | null, response?: object) => (error ? reject(error) : resolve(response as T)),
      );
    });
  }

  version(): Promise<RuntimeVersion> {
    return this.call('Version', { version: 'v1' });
  }

  /** RunPodSandbox as the kubelet sends it (labels with the pod's identity); returns the sandbox id. */
  async runPodSandbox(pod: PodRequest, placement: PodPlacement): Promise<string> {
    const config = {
      metadata: { name: pod.name, uid: pod.uid, namespace: pod.namespace, attempt: 0 },
      hostname: pod.name,
      log_directory: placement.logDirectory,
      linux: { cgroup_parent: placement.cgroupParent },
      labels: {
        'io.kubernetes.pod.name': pod.name,
        'io.kubernetes.pod.namespace': pod.namespace,
        'io.kubernetes.pod.uid': pod.uid,
        ...pod.labels,
      },
      annotations: { ...pod.annotations },
    };
    const response = await this.call<{ pod_sandbox_id: string }>('RunPodSandbox', { config });
    return response.pod_sandbox_id;
  }

  async stopPodSandbox(id: string): Promise<void> {
    await this.call('StopPodSandbox', { pod_sandbox_id: id });
  }

  async removePodSandbox(id: string): Promise<void> {
    await this.call('RemovePodSandbox', { pod_sandbox_id: id });
  }

  async podSandboxStatus(id: string): Promise<SandboxStatus> {
    const response = await this.call<{
      status: { id: string; state: SandboxStatus['state']; network?: { ip: string } };
      info: Record<string, string>;
    }>('PodSandboxStatus', { pod_sandbox_id: id, verbose: true });
    const info = JSON.parse(response.info['info'] ?? '{}') as VerboseInfo;
    const netnsPath = info.runtimeSpec?.linux?.namespaces?.find((ns) => ns.type === 'network')?.path;
    if (!netnsPath || !info.pid) throw new Error(`containerd's verbose status of ${id} has no pid or netns path: ${response.info['info']}`);
    return { id: response.status.id, state: response.status.state, ip: response.status.network?.ip ?? '', pid: info.pid, netnsPath };
  }

  close(): void {
    this.client.close();
  }
}
