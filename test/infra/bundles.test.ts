/** Every deployable entry point bundles with esbuild (as NodejsFunction and the listener's Dockerfile do). */
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';

async function bundle(entry: string): Promise<string> {
  const result = await build({ entryPoints: [entry], bundle: true, platform: 'node', target: 'node24', format: 'esm', write: false, logLevel: 'silent' });
  expect(result.errors).toEqual([]);
  return result.outputFiles[0]!.text;
}

describe('entry point bundles', () => {
  it.each(['functions/packets.ts', 'functions/ws-connect.ts', 'functions/ws-default.ts', 'functions/ws-disconnect.ts', 'functions/fanout.ts', 'functions/sweeper.ts', 'functions/http-publish.ts', 'functions/stack-certificate.ts'])(
    '%s bundles for Node 24 and exports the Lambda handler',
    async (entry) => {
      expect(await bundle(entry)).toMatch(/export\s*\{\s*handler\s*\}/);
    },
  );

  it('the listener container bundles for Node 24', async () => {
    expect(await bundle('functions/listener/main.ts')).toContain('PACKET_HANDLER_FUNCTION');
  });
});
