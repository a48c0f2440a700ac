// A scriptable OTLP/HTTP metrics and traces receiver for sonde's
// end-to-end tests.
//
//   node receiver.js PORT
//
// POST /v1/metrics      decoded with the generated protobufjs code that
//                       @opentelemetry/otlp-transformer publishes, recorded,
//                       then answered as the script says
// POST /v1/traces       the same, for ExportTraceServiceRequest
// GET  /control/requests  every metrics request so far, as JSON
// GET  /control/traces    every traces request so far, as JSON
// POST /control/script    JSON list of answers for the next requests, in
//                       order; once used up, requests get 200. An answer is
//                       {"status": 503, "retryAfter": "2"}, {"hang": true}
//                       (never answered) or {"status": 200, "partial":
//                       {"rejected": 3, "message": "why"}}. With "port": N
//                       an answer waits for the first request that carries
//                       a data point with server.port N (others get 200).
// POST /control/trace-script  the same, for traces requests
'use strict';

const http = require('http');
const zlib = require('zlib');
const root = require(
    '@opentelemetry/otlp-transformer/build/src/generated/root');

const v1 = root.opentelemetry.proto.collector.metrics.v1;
const tv1 = root.opentelemetry.proto.collector.trace.v1;
const signals = {
  metrics: {
    Request: v1.ExportMetricsServiceRequest,
    Response: v1.ExportMetricsServiceResponse,
    rejectedField: 'rejectedDataPoints',
    received: [],
    script: [],
  },
  traces: {
    Request: tv1.ExportTraceServiceRequest,
    Response: tv1.ExportTraceServiceResponse,
    rejectedField: 'rejectedSpans',
    received: [],
    script: [],
  },
};
const hung = [];

function decode(Request, req, body) {
  const gzipped = body.length >= 2 && body[0] === 0x1f && body[1] === 0x8b;
  const raw = req.headers['content-encoding'] === 'gzip' ?
      zlib.gunzipSync(body) : body;
  const message = Request.decode(raw);
  return {
    gzipped,
    request: Request.toObject(message, {
      longs: String, enums: Number, bytes: String, arrays: true,
      defaults: false, oneofs: false,
    }),
  };
}

function hasPort(request, port) {
  return JSON.stringify(request || {}).includes(
      `{"key":"server.port","value":{"intValue":"${port}"}}`);
}

function answer(signal, req, res, body) {
  const {Request, Response, rejectedField, received, script} = signal;
  const record = {
    time: Date.now() / 1000,
    headers: req.headers,
    bytes: body.length,
  };
  try {
    Object.assign(record, decode(Request, req, body));
  } catch (e) {
    record.error = String(e);
  }
  let answer = {status: 200};
  if (script.length &&
      (script[0].port === undefined || hasPort(record.request, script[0].port)))
    answer = script.shift();
  record.answer = answer;
  received.push(record);
  if (answer.hang) {
    hung.push(res);  // held open until the client gives up
    return;
  }
  const headers = {'Content-Type': 'application/x-protobuf'};
  if (answer.retryAfter !== undefined)
    headers['Retry-After'] = String(answer.retryAfter);
  let out = Buffer.alloc(0);
  if (answer.partial) {
    out = Buffer.from(Response.encode(Response.fromObject({
      partialSuccess: {
        [rejectedField]: answer.partial.rejected,
        errorMessage: answer.partial.message,
      },
    })).finish());
  }
  res.writeHead(record.error ? 400 : (answer.status || 200), headers);
  res.end(out);
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    if (req.method === 'POST' && req.url === '/v1/metrics') {
      answer(signals.metrics, req, res, body);
    } else if (req.method === 'POST' && req.url === '/v1/traces') {
      answer(signals.traces, req, res, body);
    } else if (req.method === 'GET' && req.url === '/control/requests') {
      res.writeHead(200, {'Content-Type': 'application/json'});
      res.end(JSON.stringify(signals.metrics.received));
    } else if (req.method === 'GET' && req.url === '/control/traces') {
      res.writeHead(200, {'Content-Type': 'application/json'});
      res.end(JSON.stringify(signals.traces.received));
    } else if (req.method === 'POST' && req.url === '/control/script') {
      signals.metrics.script = JSON.parse(body.toString() || '[]');
      res.writeHead(204);
      res.end();
    } else if (req.method === 'POST' && req.url === '/control/trace-script') {
      signals.traces.script = JSON.parse(body.toString() || '[]');
      res.writeHead(204);
      res.end();
    } else {
      res.writeHead(404);
      res.end();
    }
  });
});

server.keepAliveTimeout = 30000;
server.listen(Number(process.argv[2]), '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
