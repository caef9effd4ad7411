/** STATUS (CNI 1.1): ready when the programs tcqos runs are installed. */
import { CniError, ErrorCode } from '../cni/errors.ts';
import { toolPath, ToolMissingError, TOOLS } from '../netns/tools.ts';

export async function status(): Promise<void> {
  for (const tool of TOOLS) {
    try {
      toolPath(tool);
    } catch (error) {
      if (error instanceof ToolMissingError) throw new CniError(ErrorCode.pluginNotAvailable, `tcqos cannot shape: ${error.message}`);
      throw error;
    }
  }
}
