// gRPC server and client with grpc-js (on node's http2), without
// generated code: messages are raw bytes.
//   node grpcapp.js serve PORT [CERT KEY]   listens on 127.0.0.1:PORT,
//                                           over TLS when given a cert
//   node grpcapp.js call PORT PLAN [CERT]   makes every call in PLAN at
//                                           once on one channel; prints
//                                           {"STATUS_NAME": count, ...}
// PLAN is JSON: [{"method": "Get" | "Watch", "payload": "...",
//                 "count": N, "deadline": MS (optional)}, ...]; an item
// with "path" instead of "method" calls that path, unary.
// Get answers its payload back, except "missing" (NOT_FOUND), "denied"
// (PERMISSION_DENIED) and "sleep:MS" (answers after MS ms). Watch sends
// five messages 20 ms apart, then ends with OK.
'use strict';
const grpc = require('@grpc/grpc-js');
const fs = require('fs');
const [mode, port, a, b] = process.argv.slice(2);

const bytes = {
  requestSerialize: (x) => x, requestDeserialize: (x) => x,
  responseSerialize: (x) => x, responseDeserialize: (x) => x,
};
const service = {
  Get: { path: '/sonde.test.Shop/Get', requestStream: false,
    responseStream: false, ...bytes },
  Watch: { path: '/sonde.test.Shop/Watch', requestStream: false,
    responseStream: true, ...bytes },
};

function serve() {
  const server = new grpc.Server();
  server.addService(service, {
    Get(call, done) {
      const p = call.request.toString();
      if (p === 'missing') {
        done({ code: grpc.status.NOT_FOUND, details: 'no such item' });
      } else if (p === 'denied') {
        done({ code: grpc.status.PERMISSION_DENIED, details: 'no' });
      } else if (p.startsWith('sleep:')) {
        setTimeout(() => done(null, call.request), Number(p.slice(6)));
      } else {
        done(null, call.request);
      }
    },
    Watch(call) {
      let sent = 0;
      const tick = setInterval(() => {
        if (call.cancelled) {
          clearInterval(tick);
          return;
        }
        call.write(Buffer.from(`update ${sent}`));
        if (++sent === 5) {
          clearInterval(tick);
          call.end();
        }
      }, 20);
    },
  });
  const creds = a ? grpc.ServerCredentials.createSsl(null, [{
    cert_chain: fs.readFileSync(a), private_key: fs.readFileSync(b),
  }]) : grpc.ServerCredentials.createInsecure();
  server.bindAsync(`127.0.0.1:${port}`, creds, (err) => {
    if (err) {
      console.error(err.message);
      process.exit(1);
    }
  });
}

function call() {
  const plan = JSON.parse(a);
  const creds = b ? grpc.credentials.createSsl(fs.readFileSync(b), null, null,
    { checkServerIdentity: () => undefined }) :
    grpc.credentials.createInsecure();
  const Client = grpc.makeGenericClientConstructor(service, 'Shop');
  const client = new Client(`127.0.0.1:${port}`, creds);
  // Calls start on a ready channel: a deadline then runs from about when
  // the request is written, not from before the TLS handshake.
  client.waitForReady(Date.now() + 10000, (err) => {
    if (err) {
      console.error(err.message);
      process.exit(1);
    }
    start(plan, client);
  });
  setTimeout(() => { console.error('timed out'); process.exit(1); }, 30000).unref();
}

function start(plan, client) {
  const codes = {};
  const calls = [];
  const note = (code) => { codes[grpc.status[code]] = (codes[grpc.status[code]] || 0) + 1; };
  for (const item of plan) {
    for (let i = 0; i < item.count; i++) {
      const opts = item.deadline ? { deadline: Date.now() + item.deadline } : {};
      const req = Buffer.from(item.payload || 'hello');
      calls.push(new Promise((resolve) => {
        if (item.path) {
          client.makeUnaryRequest(item.path, (x) => x, (x) => x, req, opts,
            (err) => { note(err ? err.code : 0); resolve(); });
        } else if (item.method === 'Watch') {
          const s = client.Watch(req, opts);
          s.on('data', () => {});
          s.on('error', (e) => { note(e.code); resolve(); });
          s.on('status', (st) => { if (st.code === 0) { note(0); resolve(); } });
        } else {
          client.Get(req, opts, (err) => { note(err ? err.code : 0); resolve(); });
        }
      }));
    }
  }
  Promise.all(calls).then(() => {
    console.log(JSON.stringify(codes));
    client.close();
  });
}

if (mode === 'serve') serve(); else call();
