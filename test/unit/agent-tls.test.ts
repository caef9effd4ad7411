/** The self-signed serving certificate the agent makes at start: a valid X.509 v3 server certificate that TLS clients accept for its names. */
import { X509Certificate } from 'node:crypto';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { selfSignedCertificate } from '../../src/agent/tls.ts';
import { agentGet } from '../helpers/agent-client.ts';

describe('the self-signed serving certificate', () => {
  it('is signed by its own key, for its DNS names and IP addresses, a server certificate valid for a year', () => {
    const now = new Date('2026-12-03T10:00:00Z');
    const { cert } = selfSignedCertificate('tcqos-agent@node-a', ['node-a', 'localhost', '127.0.0.1', '::1', 'fd00::12:1', 'node-a'], 365, now);
    const x509 = new X509Certificate(cert);
    expect(x509.verify(x509.publicKey)).toBe(true);
    expect(x509.subject).toBe('CN=tcqos-agent@node-a');
    expect(x509.issuer).toBe(x509.subject);
    expect(x509.subjectAltName).toBe('DNS:node-a, DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, IP Address:FD00:0:0:0:0:0:12:1');
    expect(x509.checkHost('node-a')).toBe('node-a');
    expect(x509.checkIP('::1')).toBe('::1');
    expect(x509.ca).toBe(false);
    expect(x509.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']);
    expect(new Date(x509.validFrom).getTime()).toBe(now.getTime() - 3600_000);
    expect(new Date(x509.validTo).getTime()).toBe(now.getTime() + 365 * 86_400_000);
    expect(x509.publicKey.asymmetricKeyDetails).toEqual({ namedCurve: 'prime256v1' });
  });

  it('serves HTTPS that a client trusting the certificate accepts, checking the name', async () => {
    const { cert, key } = selfSignedCertificate('tcqos-agent@node-a', ['localhost', '127.0.0.1']);
    const server = createServer({ cert, key }, (_request, response) => response.end('ok'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const answer = await agentGet({ scheme: 'https', host: '127.0.0.1', port: (server.address() as AddressInfo).port, ca: cert }, '/');
      expect(answer).toMatchObject({ status: 200, text: 'ok' });
      const other = selfSignedCertificate('other', ['localhost', '127.0.0.1']).cert;
      await expect(agentGet({ scheme: 'https', host: '127.0.0.1', port: (server.address() as AddressInfo).port, ca: other }, '/')).rejects.toThrow(/self[- ]signed|signature/i);
    } finally {
      server.close();
    }
  });
});
