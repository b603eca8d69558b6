/**
 * `npx cdk synth`, as a user runs it, with no AWS credentials and no Docker engine: esbuild
 * bundles the Lambdas locally, the listener image is only staged (built at deploy time), and
 * cdk-nag runs as a validation plugin. One run; the assertion suites cover the template.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const outdir = mkdtempSync(join(tmpdir(), 'cdk-synth-'));

afterAll(() => rmSync(outdir, { recursive: true, force: true }));

/** The environment minus anything that could reach AWS or a Docker engine. */
function offlineEnv(): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^(AWS_|CDK_DEFAULT_)/.test(key)));
  return { ...env, AWS_CONFIG_FILE: '/nonexistent', AWS_SHARED_CREDENTIALS_FILE: '/nonexistent', DOCKER_HOST: 'unix:///nonexistent.sock', CDK_DISABLE_VERSION_CHECK: '1', CDK_DISABLE_CLI_TELEMETRY: 'true' };
}

describe('cdk synth', () => {
  it('succeeds offline with no context, bundles every Lambda as an ES module with its source map, and stages the listener image', { timeout: 180_000 }, async () => {
    await run('npx', ['cdk', 'synth', '--quiet', '--no-notices', '-o', outdir], {
      env: offlineEnv(),
      maxBuffer: 16 * 1024 * 1024,
    });

    const template = JSON.parse(readFileSync(join(outdir, 'ServerlessMqttBroker.template.json'), 'utf8')) as {
      Resources: Record<string, { Type: string; Properties: { Description?: string; Code: { S3Key: string } } }>;
    };
    // The seven broker functions (HTTP publish among them), the certificate issuer, and the custom resource framework's own function.
    expect(Object.values(template.Resources).filter((r) => r.Type === 'AWS::Lambda::Function')).toHaveLength(9);
    expect(Object.values(template.Resources).filter((r) => r.Type === 'Custom::StackTlsCertificate')).toHaveLength(1);

    const assets = readdirSync(outdir).filter((name) => name.startsWith('asset.')).map((name) => join(outdir, name));
    const bundles = assets.filter((dir) => existsSync(join(dir, 'index.mjs')));
    expect(bundles).toHaveLength(8);
    for (const dir of bundles) {
      expect(existsSync(join(dir, 'index.mjs.map'))).toBe(true);
      expect(readFileSync(join(dir, 'index.mjs'), 'utf8')).toMatch(/export\s*\{[^}]*handler/);
    }
    const image = assets.find((dir) => existsSync(join(dir, 'functions/listener/Dockerfile')))!;
    expect(readdirSync(image).sort()).toEqual(['functions', 'package-lock.json', 'package.json', 'shared', 'tsconfig.json']);

    // The bundles load as Node runs them on Lambda; $connect's needs no AWS to answer.
    const connectFunction = Object.values(template.Resources).find((r) => r.Type === 'AWS::Lambda::Function' && r.Properties.Description === 'WebSocket $connect')!;
    const connect = join(outdir, `asset.${connectFunction.Properties.Code.S3Key.replace(/\.zip$/, '')}`);
    // The table name CDK would pass; a request without a token never reaches it.
    process.env.SECURITY_TABLE = 'synth-test-security';
    const { handler } = (await import(join(connect, 'index.mjs'))) as { handler: (event: object) => Promise<unknown> };
    expect(await handler({ requestContext: {}, headers: { 'Sec-WebSocket-Protocol': 'mqtt' } })).toEqual({
      statusCode: 200,
      headers: { 'Sec-WebSocket-Protocol': 'mqtt' },
    });

    const report = JSON.parse(readFileSync(join(outdir, 'validation-report.json'), 'utf8')) as { pluginReports: unknown[] };
    expect(report.pluginReports).toEqual([]);
  });
});
