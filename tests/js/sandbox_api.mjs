// The Sandbox API every SDK class inherits from `e2b` (list, info and timeout, files, a background
// command and kill(pid), a PTY), checked the same way through whichever class a test holds:
// @e2b/code-interpreter's and @e2b/desktop's must behave as the base SDK's does.
import assert from 'node:assert/strict'

export async function checkInheritedSandboxApi (sbx, SandboxClass, tag, timeoutMs) {
  await sbx.setTimeout(timeoutMs)
  assert.equal((await sbx.getInfo()).sandboxId, sbx.sandboxId)
  assert.ok((await SandboxClass.list().nextItems()).some((s) => s.sandboxId === sbx.sandboxId))
  const text = `from the ${tag} SDK`
  await sbx.files.write(`/home/user/${tag}.txt`, text)
  assert.equal(await sbx.files.read(`/home/user/${tag}.txt`), text)
  assert.ok((await sbx.files.list('/home/user')).some((e) => e.name === `${tag}.txt`))
  const bg = await sbx.commands.run('sleep 30', { background: true })
  assert.equal(await sbx.commands.kill(bg.pid), true)
  let typed = ''
  const pty = await sbx.pty.create({ cols: 80, rows: 24, onData: (d) => { typed += new TextDecoder().decode(d) } })
  await sbx.pty.sendInput(pty.pid, new TextEncoder().encode(`echo ${tag}-$((6*7))\nexit\n`))
  await pty.wait().catch(() => {})
  assert.match(typed, new RegExp(`${tag}-42`))
}
