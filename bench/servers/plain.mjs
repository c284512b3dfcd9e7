/**
 * The ceiling: a plain node:http server that reads the whole body and answers 204, nothing else.
 * Listens on 127.0.0.1:PORT (argv[2]); reports its count of answered requests over IPC.
 */
import { createServer } from 'node:http';

let answered = 0;
const server = createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    Buffer.concat(chunks);
    answered += 1;
    res.writeHead(204);
    res.end();
  });
});
server.keepAliveTimeout = 5_000;
server.listen(Number(process.argv[2]), '127.0.0.1', () => process.send?.({ ready: true }));
process.on('message', (m) => {
  if (m === 'count') process.send?.({ count: answered, accepted: answered });
});
process.on('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  process.disconnect?.();
});
