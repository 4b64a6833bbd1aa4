/** One request written as raw bytes on a socket, for what fetch cannot send (another request-target form, an unknown method). */
import { connect } from 'node:net'

export interface RawAnswer {
  readonly status: number
  readonly headers: string
  readonly body: string
}

/** Writes `request` as it is to `url`'s host and port and reads the answer until the server closes or 2 s pass. */
export function rawRequest(url: string, request: string): Promise<RawAnswer> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname)
    const chunks: Buffer[] = []
    const done = (): void => {
      socket.destroy()
      const text = Buffer.concat(chunks).toString('utf8')
      const end = text.indexOf('\r\n\r\n')
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1])
      if (!Number.isInteger(status)) { reject(new Error(`no HTTP answer: ${JSON.stringify(text.slice(0, 200))}`)); return }
      resolve({ status, headers: text.slice(0, end).toLowerCase(), body: text.slice(end + 4) })
    }
    const timer = setTimeout(done, 2000)
    socket.on('data', (c: Buffer) => chunks.push(c))
    socket.on('end', () => { clearTimeout(timer); done() })
    socket.on('error', (err) => { clearTimeout(timer); if (chunks.length > 0) done(); else reject(err) })
    socket.write(request)
  })
}
