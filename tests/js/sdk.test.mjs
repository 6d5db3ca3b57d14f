// E2B's npm SDKs, unmodified, against a corral server. The environment (E2B_API_KEY plus
// E2B_API_URL/E2B_SANDBOX_URL, or E2B_DOMAIN in TLS mode) is set by tests/e2e/test_js_sdk.py,
// which starts the server and runs `node --test` here.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { Sandbox, CommandExitError, AuthenticationError } from 'e2b'
import { Sandbox as CodeSandbox } from '@e2b/code-interpreter'
import { checkInheritedSandboxApi } from './sandbox_api.mjs'

const made = []
after(async () => {
  for (const sbx of made) await sbx.kill().catch(() => {})
})

test('create, commands with streaming, files, PTY, info/timeout/metrics, pause/connect and kill', async () => {
  const sbx = await Sandbox.create('base', { timeoutMs: 120_000, metadata: { from: 'node' } })
  made.push(sbx)
  assert.match(sbx.sandboxId, /^[a-z0-9]+$/)
  assert.equal(await sbx.isRunning(), true)

  const chunks = []
  const result = await sbx.commands.run('for i in 1 2 3; do echo line$i; sleep 0.2; done; echo oops >&2', {
    onStdout: (data) => chunks.push(data),
  })
  assert.equal(result.exitCode, 0)
  assert.equal(result.stdout, 'line1\nline2\nline3\n')
  assert.equal(result.stderr, 'oops\n')
  assert.ok(chunks.length >= 2, `stdout arrived in ${chunks.length} callback(s)`)
  assert.equal(chunks.join(''), result.stdout)

  await assert.rejects(sbx.commands.run('exit 3'), (err) => err instanceof CommandExitError && err.exitCode === 3)

  const bg = await sbx.commands.run('sleep 30', { background: true })
  assert.ok(bg.pid > 0)
  assert.equal(await sbx.commands.kill(bg.pid), true)

  const info = await sbx.files.write('/home/user/notes/hello.txt', 'hello from node')
  assert.equal(info.path, '/home/user/notes/hello.txt')
  assert.equal(await sbx.files.read('/home/user/notes/hello.txt'), 'hello from node')
  const bytes = await sbx.files.read('/home/user/notes/hello.txt', { format: 'bytes' })
  assert.equal(Buffer.from(bytes).toString(), 'hello from node')
  const entries = await sbx.files.list('/home/user/notes')
  assert.deepEqual(entries.map((e) => [e.name, e.type]), [['hello.txt', 'file']])
  assert.equal(await sbx.files.exists('/home/user/notes/missing'), false)

  let output = ''
  const pty = await sbx.pty.create({ cols: 80, rows: 24, onData: (d) => { output += new TextDecoder().decode(d) } })
  await sbx.pty.sendInput(pty.pid, new TextEncoder().encode('echo pty-$((6*7))\nexit\n'))
  await pty.wait().catch(() => {})
  assert.match(output, /pty-42/)

  const listed = await Sandbox.list({ query: { metadata: { from: 'node' } } }).nextItems()
  assert.ok(listed.some((s) => s.sandboxId === sbx.sandboxId))

  // get_info / set_timeout / metrics, then pause and resume by connecting (the file survives).
  await sbx.setTimeout(90_000)
  const got = await sbx.getInfo()
  assert.equal(got.sandboxId, sbx.sandboxId)
  assert.equal(got.templateId, 'base')
  assert.deepEqual(got.metadata, { from: 'node' })
  const left = got.endAt.getTime() - Date.now()
  assert.ok(left > 30_000 && left <= 91_000, `${left} ms left after setTimeout(90 s)`)
  const metrics = await sbx.getMetrics()
  assert.ok(metrics.length >= 1 && metrics[0].cpuCount >= 1 && metrics[0].memTotal > 0, JSON.stringify(metrics))
  assert.equal(await sbx.pause(), true)
  assert.equal((await Sandbox.getInfo(sbx.sandboxId)).state, 'paused')
  const resumed = await Sandbox.connect(sbx.sandboxId)
  assert.equal(await resumed.files.read('/home/user/notes/hello.txt'), 'hello from node')

  await assert.rejects(Sandbox.list({ apiKey: 'e2b_' + '0'.repeat(40) }).nextItems(),
    (err) => err instanceof AuthenticationError)

  assert.equal(await sbx.kill(), true)
  assert.equal(await Sandbox.kill(sbx.sandboxId), false)
})

test('run_code in python and javascript through @e2b/code-interpreter', async () => {
  const sbx = await CodeSandbox.create({ timeoutMs: 120_000 })
  made.push(sbx)
  const stdout = []
  const py = await sbx.runCode('import math\nprint("py", 6 * 7)\nmath.sqrt(16)', {
    onStdout: (m) => stdout.push(m.line),
  })
  assert.equal(py.error, undefined)
  assert.deepEqual(py.logs.stdout, ['py 42\n'])
  assert.equal(py.text, '4.0')
  assert.ok(stdout.length === 1)

  const err = await sbx.runCode('1 / 0')
  assert.equal(err.error.name, 'ZeroDivisionError')

  const js = await sbx.runCode('const a = 6; console.log("js", a * 7); a * 7', { language: 'js' })
  assert.equal(js.error, undefined)
  assert.deepEqual(js.logs.stdout, ['js 42\n'])
  assert.equal(js.text, '42')

  // E2B's fidelity details through the JS SDK: ES-module import, default contexts listed first.
  const esm = await sbx.runCode("import { readFileSync } from 'fs'\nconsole.log(typeof readFileSync)", { language: 'js' })
  assert.deepEqual(esm.logs.stdout, ['function\n'])
  const ctx = await sbx.createCodeContext({ language: 'python' })
  const listed = await sbx.listCodeContexts()
  assert.deepEqual(listed.slice(0, 2).map((c) => c.language).sort(), ['javascript', 'python'])
  assert.equal(listed[listed.length - 1].id, ctx.id)
  await sbx.runCode('x = 5', { context: ctx })
  assert.equal((await sbx.runCode('x * 2', { context: ctx })).text, '10')

  const chart = await sbx.runCode("import matplotlib.pyplot as plt\nplt.plot([1, 3])\nplt.xlabel('Time (s)')\nplt.show()")
  assert.ok(chart.results[0].png, 'a PNG result')
  assert.equal(chart.results[0].chart.x_unit, 's')
  const image = await sbx.runCode("from PIL import Image\nImage.new('RGB', (4, 4)).save('/tmp/js.png')")
  assert.ok(image.results[0].png, 'a saved PIL image is a PNG result')

  // The rest of the Sandbox API through @e2b/code-interpreter's class: list, info and timeout,
  // files, a background command and kill(pid), a PTY, and a wrong API key.
  await checkInheritedSandboxApi(sbx, CodeSandbox, 'code-interpreter', 100_000)
  await assert.rejects(CodeSandbox.create({ apiKey: 'e2b_' + '0'.repeat(40) }), (e) => e instanceof AuthenticationError)
  await sbx.kill()
})
