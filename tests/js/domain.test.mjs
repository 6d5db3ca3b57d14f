// E2B's npm SDKs with only E2B_DOMAIN, E2B_API_KEY and NODE_EXTRA_CA_CERTS (TLS mode, no URL
// variables): they derive https://api.<domain> and https://<port>-<id>.<domain> themselves.
// Run by tests/e2e/test_domain_only.py against `corral serve --tls`.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Sandbox } from '@e2b/code-interpreter'

test('domain-only: create, command, files, run_code, kill', async () => {
  assert.equal(process.env.E2B_API_URL, undefined)
  assert.equal(process.env.E2B_SANDBOX_URL, undefined)
  const sbx = await Sandbox.create({ timeoutMs: 120_000 })
  try {
    assert.equal(sbx.getHost(8080), `8080-${sbx.sandboxId}.${process.env.E2B_DOMAIN}`)
    assert.equal((await sbx.commands.run('echo over-tls')).stdout, 'over-tls\n')
    await sbx.files.write('/tmp/domain.txt', 'domain only')
    assert.equal(await sbx.files.read('/tmp/domain.txt'), 'domain only')
    const py = await sbx.runCode('print(6 * 7)')
    assert.deepEqual(py.logs.stdout, ['42\n'])
  } finally {
    assert.equal(await sbx.kill(), true)
  }
})
