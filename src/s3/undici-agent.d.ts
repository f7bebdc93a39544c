// undici's Agent without the rest of the package (fetch, WebSocket, mocks, caches): `import { Agent } from 'undici'`
// loads all of it, 75 ms against 25 for the Agent alone (unbundled). The package has no "exports" map, so the path
// is reachable; its version is pinned.
declare module 'undici/lib/dispatcher/agent.js' {
  import { Agent } from 'undici';
  export default Agent;
}
