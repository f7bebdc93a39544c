import { createServer, request, type Server } from 'node:http';
import { chmodSync, rmSync } from 'node:fs';

/**
 * `station status` talks to the daemon over a Unix socket in the run folder: local only, and no more open than
 * the folder (0700) lets it be.
 */
export async function serveStatus(socketPath: string, status: () => unknown): Promise<Server> {
  rmSync(socketPath, { force: true }); // left by a daemon that was killed
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || req.url !== '/status') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(status()));
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(socketPath, resolve));
  chmodSync(socketPath, 0o600);
  return server;
}

export function fetchStatus(socketPath: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path: '/status', method: 'GET', timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => {
        try {
          resolve(JSON.parse(body));
        } catch (err) {
          reject(err);
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error('the daemon did not answer within 5 s')));
    req.on('error', reject);
    req.end();
  });
}
