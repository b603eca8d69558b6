// The system tools the tests need besides npm's packages, checked before anything slow starts:
// one line per missing tool naming the Debian package that brings it, then one apt-get line for all.
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';

const onPath = (name) =>
  (process.env.PATH ?? '').split(path.delimiter).some((dir) => {
    try {
      accessSync(path.join(dir || '.', name), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });

const isExecutable = (file) => {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

// `java -version` prints `openjdk version "17.0.12"` (or `"1.8.0_402"` for Java 8) on stderr.
function javaProblem() {
  if (!onPath('java')) return 'java';
  const probe = spawnSync('java', ['-version'], { encoding: 'utf8' });
  const match = /version "(\d+)(?:\.(\d+))?/.exec(`${probe.stderr}${probe.stdout}`);
  if (!match) return 'java (its version could not be read)';
  const major = match[1] === '1' ? Number(match[2]) : Number(match[1]);
  return major >= 17 ? undefined : `java 17+ (found Java ${major})`;
}

const checks = [
  { what: () => javaProblem(), why: 'for DynamoDB Local', debian: 'openjdk-17-jre-headless' },
  {
    what: () => ['mosquitto_pub', 'mosquitto_sub'].filter((tool) => !onPath(tool)).join(', ') || undefined,
    why: 'for the end-to-end tests',
    debian: 'mosquitto-clients',
  },
  { what: () => (onPath('curl') ? undefined : 'curl'), why: 'for the HTTP door\'s end-to-end tests', debian: 'curl' },
  { what: () => (isExecutable('/usr/bin/chromium') ? undefined : '/usr/bin/chromium'), why: 'for the browser tests', debian: 'chromium' },
];

const missing = checks.flatMap(({ what, why, debian }) => {
  const problem = what();
  return problem ? [{ problem, why, debian }] : [];
});
for (const { problem, why, debian } of missing) {
  console.error(`missing: ${problem} (Debian package ${debian}, ${why}): run  sudo apt-get install -y ${debian}`);
}

// npm scripts run on the project's Node (the dev dependency `node`); an older one means its
// install script did not run (see allowScripts in package.json).
const nodeMajor = Number(process.versions.node.split('.')[0]);
const oldNode = nodeMajor < 24;
if (oldNode) {
  console.error(`missing: Node 24 (npm package node, a dev dependency; this runs on ${process.version} from ${process.execPath}): run  npm ci  (allowScripts in package.json lets its install script run)`);
}

if (missing.length > 0) {
  console.error(`install them all at once:  sudo apt-get update && sudo apt-get install -y ${missing.map((m) => m.debian).join(' ')}`);
}
if (missing.length > 0 || oldNode) process.exit(1);
