// Drives the in-sandbox API (envd) of banger's HTTP API with the
// unmodified e2b SDK (package.json pins it), for e2e/envd_test.go's
// TestEnvdSDK: one sandbox, every check, one JSON line of what the SDK
// saw (the Go test asserts it). E2B_API_URL, E2B_SANDBOX_URL and
// E2B_API_KEY come from the environment.
//
//   node envd.mjs          the checks
//   node envd.mjs bench N  for TestBenchEnvd: Sandbox.create() → first
//                          commands.run('true'), then N commands.run('true')
//                          once the guest's boot has settled; the sandbox
//                          is left running (its id is printed) for the CLI
//                          to be timed on it
import { Sandbox, CommandExitError } from 'e2b'

const slow = { requestTimeoutMs: 600_000 } // a boot under TCG on a shared host
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

async function main() {
  const out = {}
  const sb = await Sandbox.create({ ...slow, timeoutMs: 600_000, envs: { SANDBOX_VAR: 'from-create' } })
  try {
    // commands.run: output, exit code, env, cwd, user, a failing command.
    let t0 = performance.now()
    const r = await sb.commands.run('echo out; echo err >&2')
    out.firstRunMs = performance.now() - t0
    out.run = { stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode }
    t0 = performance.now()
    await sb.commands.run('true')
    out.trueMs = performance.now() - t0
    out.env = (await sb.commands.run('echo "$GREETING"', { envs: { GREETING: 'hello' } })).stdout
    out.sandboxEnv = (await sb.commands.run('echo "$SANDBOX_VAR"')).stdout
    out.cwd = (await sb.commands.run('pwd', { cwd: '/tmp' })).stdout
    out.user = (await sb.commands.run('id -un', { user: 'nobody' })).stdout
    try {
      await sb.commands.run('echo failing >&2; exit 3')
      out.failing = { error: 'none' }
    } catch (e) {
      out.failing = { commandExitError: e instanceof CommandExitError, exitCode: e.exitCode, stderr: e.stderr }
    }

    // A background command fed with sendStdin, then killed.
    let bgOut = ''
    const bg = await sb.commands.run('while read l; do echo got:$l; done', {
      background: true, stdin: true, onStdout: (d) => { bgOut += d },
    })
    await sb.commands.sendStdin(bg.pid, 'ping\n')
    for (let i = 0; i < 100 && !bgOut.includes('got:ping'); i++) await sleep(100)
    out.listed = (await sb.commands.list()).some((p) => p.pid === bg.pid)
    out.killed = await sb.commands.kill(bg.pid)
    try {
      await bg.wait()
      out.background = { stdout: bgOut, error: 'none' }
    } catch (e) {
      out.background = { stdout: bgOut, exitCode: e.exitCode }
    }

    // Files: a watch sees the writes; write, read, list, makeDir,
    // rename, remove, exists.
    const events = []
    const watch = await sb.files.watchDir('/tmp/w', (ev) => events.push(`${ev.type}:${ev.name}`), { recursive: true })
      .catch(async (e) => {
        await sb.files.makeDir('/tmp/w')
        return sb.files.watchDir('/tmp/w', (ev) => events.push(`${ev.type}:${ev.name}`), { recursive: true })
      })
    out.makeDir = await sb.files.makeDir('/tmp/w/dir')
    out.makeDirAgain = await sb.files.makeDir('/tmp/w/dir')
    const w = await sb.files.write('/tmp/w/dir/a.txt', 'file content')
    out.written = w.path
    await sb.files.write([{ path: '/tmp/w/b.txt', data: 'bee' }, { path: '/tmp/w/c.txt', data: 'sea' }])
    out.read = await sb.files.read('/tmp/w/dir/a.txt')
    out.list = (await sb.files.list('/tmp/w')).map((e) => `${e.type}:${e.name}`).sort()
    out.renamed = (await sb.files.rename('/tmp/w/b.txt', '/tmp/w/dir/b2.txt')).path
    out.existsBefore = await sb.files.exists('/tmp/w/c.txt')
    await sb.files.remove('/tmp/w/c.txt')
    out.existsAfter = await sb.files.exists('/tmp/w/c.txt')
    for (let i = 0; i < 50 && !events.some((e) => e.includes('c.txt') && e.startsWith('remove')); i++) await sleep(100)
    await watch.stop()
    out.events = events

    // A terminal: typed into, resized.
    let ptyOut = ''
    const dec = new TextDecoder()
    const term = await sb.pty.create({ cols: 80, rows: 24, onData: (d) => { ptyOut += dec.decode(d) } })
    await sb.pty.resize(term.pid, { cols: 100, rows: 30 })
    await sb.pty.sendInput(term.pid, new TextEncoder().encode('stty size; exit 4\n'))
    try {
      await term.wait()
      out.pty = { output: ptyOut, exitCode: 0 }
    } catch (e) {
      out.pty = { output: ptyOut, exitCode: e.exitCode }
    }
  } finally {
    await sb.kill().catch(() => {})
  }
  return out
}

async function bench(n) {
  let t0 = performance.now()
  const sb = await Sandbox.create({ ...slow, timeoutMs: 600_000 })
  const create = performance.now() - t0
  await sb.commands.run('true')
  const createToFirst = performance.now() - t0
  // Sandbox.create returns when the agent answers; systemd still boots.
  await sb.commands.run('systemctl is-system-running --wait', { timeoutMs: 300_000 }).catch(() => {})
  const runs = []
  for (let i = 0; i < n; i++) {
    t0 = performance.now()
    await sb.commands.run('true')
    runs.push(performance.now() - t0)
  }
  return { sandboxId: sb.sandboxId, create, createToFirst, runs }
}

(process.argv[2] === 'bench' ? bench(Number(process.argv[3] ?? 10)) : main()).then(
  (r) => console.log(JSON.stringify(r)),
  (e) => { console.error(e); process.exit(1) },
)
