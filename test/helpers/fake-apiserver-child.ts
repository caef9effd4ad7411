/**
 * The fake API server as a child process (test/helpers/child-rpc.ts), for an agent that runs in
 * another network namespace (in a container joined to a test's "node" namespace, or in the bench's
 * runner namespace): started there, it listens on that namespace's loopback, and the test drives it
 * with calls of its methods (setPod, editAnnotations, addToken, grant, ...) and reads its
 * properties (events, requests, accessReviews).
 *
 *   node fake-apiserver-child.ts '{"port": 0, "tls": {"cert": "PEM", "key": "PEM"}}'
 */
import { serveCalls } from './child-rpc.ts';
import { FakeApiServer, type FakeApiServerOptions } from './fake-apiserver.ts';

const options = JSON.parse(process.argv[2] ?? '{}') as FakeApiServerOptions;
const fake = await FakeApiServer.start(options);
serveCalls(fake, { url: fake.url, port: fake.port }, () => fake.close());
