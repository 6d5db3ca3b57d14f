// E2B's npm desktop SDK (@e2b/desktop) unchanged against corral's `desktop` template: the SDK
// starts Xvfb and XFCE itself and drives them with xdotool, scrot and xrandr through commands.
// Run by tests/e2e/test_desktop_js.py with E2B_API_KEY / E2B_API_URL / E2B_SANDBOX_URL set.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Sandbox } from '@e2b/desktop'
import { AuthenticationError } from 'e2b'
import { checkInheritedSandboxApi } from './sandbox_api.mjs'

test('the desktop SDK sees and drives a 1024x768 XFCE desktop', { timeout: 400_000 }, async () => {
  const desk = await Sandbox.create({ timeoutMs: 400_000 })
  try {
    const png = await desk.screenshot()
    assert.deepEqual([...png.slice(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10], 'a PNG')
    const ihdr = new DataView(png.buffer, png.byteOffset, png.byteLength)
    assert.equal(ihdr.getUint32(16), 1024)
    assert.equal(ihdr.getUint32(20), 768)

    assert.deepEqual(await desk.getScreenSize(), { width: 1024, height: 768 })
    await desk.moveMouse(100, 200)
    assert.deepEqual(await desk.getCursorPosition(), { x: 100, y: 200 })

    // An editor, typed into with write(): the window title gains the modified mark.
    await desk.launch('org.xfce.mousepad')
    let windows = []
    for (let i = 0; i < 120 && windows.length === 0; i++) {
      try { windows = await desk.getApplicationWindows('mousepad') } catch { windows = [] }
      if (windows.length === 0) await new Promise((r) => setTimeout(r, 500))
    }
    assert.ok(windows.length > 0, 'mousepad opened a window')
    await desk.commands.run(`xdotool windowactivate --sync ${windows[0]} || true`)
    await new Promise((r) => setTimeout(r, 1000))
    assert.ok(!(await desk.getWindowTitle(windows[0])).includes('*'))
    await desk.write('hello')
    await new Promise((r) => setTimeout(r, 500))
    assert.ok((await desk.getWindowTitle(windows[0])).includes('*'))

    // The rest of the Sandbox API through @e2b/desktop's class: list, info and timeout, files,
    // a background command and kill(pid), a PTY, and a wrong API key.
    await checkInheritedSandboxApi(desk, Sandbox, 'desktop', 300_000)
    await assert.rejects(Sandbox.list({ apiKey: 'e2b_' + '0'.repeat(40) }).nextItems(),
      (e) => e instanceof AuthenticationError)
  } finally {
    await desk.kill()
  }
})
