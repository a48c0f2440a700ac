// HTTP/2 over TLS with node's own http2 module (nghttp2 inside node, and
// the OpenSSL linked into node's executable).
//   node h2app.js server PORT CERT KEY
//   node h2app.js client PORT N    N requests at once on one session;
//                                  prints {"status": count, ...}
// Request i: POST every 4th from i = 1 (a 5000-byte body), /boom every
// 10th from i = 9 (500), /big/i every 3rd from i = 0 (100000-byte
// answer), else /items/i. POST answers 201, others 200.
'use strict';
const http2 = require('http2');
const fs = require('fs');
const [mode, port, a, b] = process.argv.slice(2);

function plan(i) {
  const path = i % 10 === 9 ? '/boom' : i % 3 === 0 ? `/big/${i}` : `/items/${i}`;
  return { path, method: i % 4 === 1 ? 'POST' : 'GET' };
}

if (mode === 'server') {
  const server = http2.createSecureServer({
    cert: fs.readFileSync(a), key: fs.readFileSync(b),
  });
  server.on('stream', (stream, headers) => {
    const path = headers[':path'];
    const status = path === '/boom' ? 500 :
      headers[':method'] === 'POST' ? 201 : 200;
    stream.on('data', () => {});
    stream.on('end', () => {
      stream.respond({ ':status': status, 'content-type': 'text/plain' });
      stream.end('x'.repeat(path.startsWith('/big/') ? 100000 : 10));
    });
  });
  server.listen(Number(port), '127.0.0.1');
} else {
  const n = Number(a);
  const session = http2.connect(`https://127.0.0.1:${port}`,
    { rejectUnauthorized: false });
  const codes = {};
  let done = 0;
  for (let i = 0; i < n; i++) {
    const { path, method } = plan(i);
    const req = session.request({ ':method': method, ':path': path });
    req.on('response', (h) => {
      codes[h[':status']] = (codes[h[':status']] || 0) + 1;
    });
    req.on('data', () => {});
    req.on('end', () => {
      if (++done === n) {
        console.log(JSON.stringify(codes));
        session.close();
      }
    });
    req.end(method === 'POST' ? 'y'.repeat(5000) : undefined);
  }
  setTimeout(() => { console.error('timed out'); process.exit(1); }, 30000).unref();
}
