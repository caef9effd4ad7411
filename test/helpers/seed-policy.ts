/** The public interface's example (issue #2): the seed's egress tree, with one IPv4+IPv6 db peer on TCP 5432. */
export const SEED_EGRESS = {
  rate: '50mbit',
  default: 'rest',
  classes: [
    { name: 'rest', rate: '10mbit' },
    { name: 'db', rate: '40mbit', ceil: '50mbit', priority: 1, peers: ['198.18.0.3/32', '2001:2::3/128'], protocol: 'tcp', ports: [5432] },
  ],
};
