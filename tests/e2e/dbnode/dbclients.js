// Database clients from npm, for sonde's end-to-end tests: each mode
// makes a fixed set of calls to a server on 127.0.0.1:PORT, then prints
// one line of JSON saying what it got back, and exits 0 (1 on any
// surprise, with the reason on stderr).
//   node dbclients.js pg PORT         node-postgres (pg), extended protocol
//   node dbclients.js redis PORT      ioredis with auto-pipelining
//   node dbclients.js memcached PORT  memcached (the text protocol)
// The calls each mode makes are listed above its function, as the test
// expects sonde to count them; a driver's own handshake (ioredis's CLIENT
// SETINFO and INFO) comes on top.
'use strict';
const [mode, port] = process.argv.slice(2);

const range = (n) => Array.from({ length: n }, (_, i) => i);

function check(what, ok, got) {
  if (!ok) {
    throw new Error(`${what}: got ${JSON.stringify(got)}`);
  }
}

// On the orders table (50 seed rows, id 1..50):
//   SELECT  25  the named statement 'by-id': Parse once, then Bind,
//               Describe, Execute, Sync each time, in one write (corked)
//   INSERT  10  unnamed statements with parameters: Parse, Bind,
//               Describe, Execute, Sync in one write each
//   SELECT   1  on no_such_table, a simple Query: 42P01
//   UPDATE   8  issued at once on one client, which queues them and
//               sends each after the previous one's ReadyForQuery
//   DELETE  15  issued at once on a client in pipeline mode, which writes
//               them all without waiting, each with its own Sync (no row
//               matches), and in their midst...
//   SELECT   1  ...one on missing_table: 42P01 at Parse, its Bind,
//               Describe and Execute skipped up to its Sync
async function postgres() {
  const pg = require('pg');
  const config = { host: '127.0.0.1', port: Number(port), user: 'postgres',
    database: 'postgres', ssl: false };
  const client = new pg.Client(config);
  await client.connect();
  let found = 0;
  for (const i of range(25)) {
    const r = await client.query({ name: 'by-id',
      text: 'SELECT id, item FROM orders WHERE id = $1', values: [i + 1] });
    found += r.rowCount;
  }
  check('SELECT by-id', found === 25, found);
  for (const i of range(10)) {
    const r = await client.query(
      'INSERT INTO orders (item, qty) VALUES ($1, $2)', ['node', i]);
    check('INSERT', r.rowCount === 1, r.rowCount);
  }
  const errors = [];
  await client.query('SELECT * FROM no_such_table').then(
    () => errors.push('none'), (e) => errors.push(e.code));
  const updated = await Promise.all(range(8).map((i) => client.query(
    'UPDATE orders SET qty = qty + 1 WHERE id = $1', [i + 1])));
  check('UPDATE', updated.every((r) => r.rowCount === 1),
    updated.map((r) => r.rowCount));
  await client.end();

  const piped = new pg.Client({ ...config, pipeline: true });
  await piped.connect();
  const del = (i) => piped.query('DELETE FROM orders WHERE id = $1',
    [100000 + i]);
  const deletes = range(7).map(del);
  const missing = piped.query('SELECT * FROM missing_table WHERE id = $1',
    [1]).then(() => 'none', (e) => e.code);
  deletes.push(...range(8).map((i) => del(7 + i)));
  const deleted = await Promise.all(deletes);
  check('DELETE', deleted.every((r) => r.rowCount === 0),
    deleted.map((r) => r.rowCount));
  errors.push(await missing);
  await piped.end();
  return { select: found, insert: 10, update: updated.length,
    delete: deleted.length, errors };
}

// SET 300 and GET 300, each issued at once without awaiting one another:
// auto-pipelining sends each batch in a few large writes; LPUSH 1 on a
// string key (WRONGTYPE) in the same batch as the GETs; then a
// transaction: MULTI 1, INCR 2, EXEC 1.
async function redis() {
  const Redis = require('ioredis');
  const r = new Redis({ host: '127.0.0.1', port: Number(port),
    enableAutoPipelining: true, lazyConnect: true,
    maxRetriesPerRequest: 0, retryStrategy: () => null });
  await r.connect();
  const sets = await Promise.all(range(300).map(
    (i) => r.set(`node:${i}`, `value-${i}`)));
  check('SET', sets.every((x) => x === 'OK'), sets);
  const wrongtype = r.lpush('node:0', 'x').then(() => 'none',
    (e) => e.message.split(' ')[0]);
  const gets = await Promise.all(range(300).map((i) => r.get(`node:${i}`)));
  check('GET', gets.every((x, i) => x === `value-${i}`), gets);
  const error = await wrongtype;
  const tx = await r.multi().incr('node:counter').incr('node:counter').exec();
  check('EXEC', tx.length === 2 && tx[1][1] === tx[0][1] + 1, tx);
  r.disconnect();
  return { set: sets.length, get: gets.length, error, incr: tx.length };
}

// SET 10, GET 10, one multi-get of three keys (one GET), DELETE 3.
async function memcached() {
  const Memcached = require('memcached');
  const mc = new Memcached(`127.0.0.1:${port}`, { retries: 0,
    timeout: 5000, poolSize: 1 });
  const call = (fn, ...args) => new Promise((resolve, reject) =>
    mc[fn](...args, (err, x) => (err ? reject(err) : resolve(x))));
  for (const i of range(10)) {
    check('set', await call('set', `node${i}`, `v${i}`, 0) === true, i);
  }
  for (const i of range(10)) {
    const v = await call('get', `node${i}`);
    check('get', v === `v${i}`, v);
  }
  const many = await call('getMulti', ['node1', 'node2', 'node3']);
  check('getMulti', Object.keys(many).length === 3, many);
  for (const i of range(3)) {
    check('del', await call('del', `node${i}`) === true, i);
  }
  mc.end();
  return { set: 10, get: 10, getMulti: Object.keys(many).length, del: 3 };
}

const modes = { pg: postgres, redis, memcached };
if (!modes[mode] || !port) {
  console.error('usage: node dbclients.js pg|redis|memcached PORT');
  process.exit(2);
}
setTimeout(() => { console.error('timed out'); process.exit(1); },
  60000).unref();
modes[mode]().then((summary) => {
  console.log(JSON.stringify(summary));
}, (e) => {
  console.error(e);
  process.exit(1);
});
