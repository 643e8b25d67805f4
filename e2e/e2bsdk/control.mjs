// Drives banger's HTTP API with the unmodified e2b SDK (package.json pins
// it), one step per run, for e2e/e2b_test.go: the test reads the JSON line
// this prints. E2B_API_URL, E2B_SANDBOX_URL and E2B_API_KEY come from the
// environment, as for any program written for E2B.
//
//   node control.mjs STEP [ARG...]
import { Sandbox, AuthenticationError, SandboxNotFoundError } from 'e2b'

const slow = { requestTimeoutMs: 600_000 } // a boot under TCG on a shared host
const [step, ...args] = process.argv.slice(2)

async function main() {
  switch (step) {
    case 'create': { // create [META_KEY=VALUE] [TIMEOUT_MS] [pause: paused, not killed, at its timeout]
      const [k, v] = (args[0] ?? 'suite=e2e').split('=')
      const t0 = performance.now()
      const lifecycle = args[2] === 'pause' ? { onTimeout: 'pause' } : undefined
      const sb = await Sandbox.create({ ...slow, metadata: { [k]: v }, timeoutMs: Number(args[1] ?? 600_000), lifecycle })
      return { sandboxId: sb.sandboxId, ms: performance.now() - t0 }
    }
    case 'list': { // list META_KEY=VALUE: the ids that match
      const [k, v] = args[0].split('=')
      const p = Sandbox.list({ query: { metadata: { [k]: v } } })
      const ids = []
      while (p.hasNext) for (const s of await p.nextItems()) ids.push(s.sandboxId)
      return { ids }
    }
    case 'info': { // info ID: its state, or notFound
      try {
        const i = await Sandbox.getInfo(args[0])
        return { state: i.state, metadata: i.metadata, templateId: i.templateId, endAt: i.endAt }
      } catch (e) {
        if (e instanceof SandboxNotFoundError) return { notFound: true }
        throw e
      }
    }
    case 'pause': // pause ID: true when paused, false when it already was
      return { paused: await Sandbox.pause(args[0], slow) }
    case 'connect': { // connect ID: a paused sandbox resumes
      const sb = await Sandbox.connect(args[0], { ...slow, timeoutMs: 600_000 })
      return { sandboxId: sb.sandboxId, running: await sb.isRunning().catch(() => null) }
    }
    case 'settimeout': // settimeout ID MS
      await Sandbox.setTimeout(args[0], Number(args[1]))
      return { ok: true }
    case 'fork': { // fork ID N: the children's ids (E2B's fork is vm fork)
      const children = await Sandbox.fork(args[0], { ...slow, count: Number(args[1] ?? 1) })
      return { ids: children.map((c) => (c instanceof Error ? `error: ${c.message}` : c.sandboxId)) }
    }
    case 'network': { // network ID ALLOW DENY: replaces the egress rules
      await Sandbox.updateNetwork(args[0], { allowOut: [args[1]], denyOut: [args[2]] })
      return { ok: true }
    }
    case 'kill': // kill ID: true when it was there
      return { killed: await Sandbox.kill(args[0]) }
    case 'bench': { // bench: create → ready, then kill, in ms
      let t0 = performance.now()
      const sb = await Sandbox.create({ ...slow, timeoutMs: 600_000 })
      const create = performance.now() - t0
      t0 = performance.now()
      await sb.kill()
      return { create, kill: performance.now() - t0 }
    }
    case 'infobench': { // infobench ID: ms per getInfo, over 20
      await Sandbox.getInfo(args[0]) // the connection is made
      const t0 = performance.now()
      for (let i = 0; i < 20; i++) await Sandbox.getInfo(args[0])
      return { info: (performance.now() - t0) / 20 }
    }
    case 'badkey': // a wrong key must be the SDK's AuthenticationError
      try {
        await Sandbox.list({ apiKey: 'bgr_' + 'x'.repeat(52) }).nextItems()
        return { error: 'none' }
      } catch (e) {
        return { error: e.constructor.name, auth: e instanceof AuthenticationError, message: e.message }
      }
    default:
      throw new Error(`unknown step ${step}`)
  }
}

main().then(
  (r) => console.log(JSON.stringify(r)),
  (e) => { console.error(`${step}: ${e?.constructor?.name}: ${e?.message}`); process.exit(1) },
)
