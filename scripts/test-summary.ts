// Prints vitest's JSON report for CI logs, whose tail is what a reader sees: each failed test with
// the start of its message, then one plain line ("N passed, N failed, N skipped").
import { readFileSync } from 'node:fs';

interface Assertion {
  fullName: string;
  status: string;
  failureMessages: string[];
}

const report = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as {
  numPassedTests: number;
  numFailedTests: number;
  numPendingTests: number;
  numTodoTests: number;
  testResults: { name: string; message?: string; assertionResults: Assertion[] }[];
};

const MESSAGE_LINES = 30;
// Colour codes make no sense in a stored log.
const plain = (text: string) => text.replace(/\u001b\[[0-9;]*m/g, '');

for (const file of report.testResults) {
  const failed = file.assertionResults.filter((test) => test.status === 'failed');
  // A file that failed before its tests ran (an import or a hook) carries its message itself.
  if (failed.length === 0 && file.message) console.log(`FAILED ${file.name}\n${plain(file.message).split('\n').slice(0, MESSAGE_LINES).join('\n')}`);
  for (const test of failed) {
    const message = plain(test.failureMessages.join('\n')).split('\n').slice(0, MESSAGE_LINES).join('\n');
    console.log(`FAILED ${file.name} > ${test.fullName}\n${message}`);
  }
}
console.log(`${report.numPassedTests} passed, ${report.numFailedTests} failed, ${report.numPendingTests + report.numTodoTests} skipped`);
