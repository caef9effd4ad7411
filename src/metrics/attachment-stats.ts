/**
 * The stats types now live with their use case in src/attachment/stats.ts; this re-export keeps the
 * modules that imported them from here (src/agent/deps.ts) building. Import from src/attachment.
 */
export type { AttachmentStats, ClassStats, DirectionStats } from '../attachment/stats.ts';
