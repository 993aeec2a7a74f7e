// client_test.mjs: the official Qdrant JavaScript client (@qdrant/js-client-rest,
// pinned by package-lock.json) against vecdb's Qdrant-compatible API, through
// a scripted session over every group of routes, checking values.
//
//   node client_test.mjs BIN_DIR serve|cluster
//
// serve: one `vecdb serve`; cluster: three vecdb-node shards behind a
// vecdb-router. The processes bind 127.0.0.1 on free ports and are stopped
// at the end, also on failure.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import Ajv from 'ajv';
import { QdrantClient } from '@qdrant/js-client-rest';

const [binDir, target = 'serve'] = process.argv.slice(2);
if (!binDir) {
	console.error('usage: node client_test.mjs BIN_DIR serve|cluster');
	process.exit(2);
}
const tmp = mkdtempSync(join(process.env.TMPDIR || tmpdir(), 'vecdb-qdrant-'));
const procs = [];   // { p, name, err }
const KEY = 'qdrant-test-key';

function cleanup() {
	for (const { p } of procs)
		if (p.exitCode === null && p.signalCode === null)
			p.kill('SIGKILL');
	rmSync(tmp, { recursive: true, force: true });
}

// Stop every process with SIGTERM: each must exit 0 (a clean shutdown;
// under ASan also no leak) within 30 s.
async function stopAll() {
	for (const { p, name, err } of procs.reverse()) {
		if (p.exitCode === null && p.signalCode === null) {
			const done = new Promise((r) => p.once('exit', r));
			p.kill('SIGTERM');
			const timer = setTimeout(() => p.kill('SIGKILL'), 30000);
			await done;
			clearTimeout(timer);
		}
		assert.equal(p.exitCode, 0, `${name} exited with ${p.exitCode ?? p.signalCode}: ${err()}`);
	}
}
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM'])
	process.on(sig, () => process.exit(1));

// A free loopback port (bound, then released for the server).
function freePort() {
	return new Promise((resolve, reject) => {
		const s = createServer();
		s.once('error', reject);
		s.listen(0, '127.0.0.1', () => {
			const { port } = s.address();
			s.close(() => resolve(port));
		});
	});
}

// Start a process and wait for a stdout line matching re; its match.
function start(bin, args, re) {
	const env = { ...process.env, VECDB_LOG: 'warn' };
	for (const k of Object.keys(env))
		if (k.startsWith('VECDB_') && k !== 'VECDB_LOG')
			delete env[k];
	const p = spawn(join(binDir, bin), args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
	let out = '', err = '';
	procs.push({ p, name: bin, err: () => err.slice(-4000) });
	p.stderr.on('data', (d) => { err += d; });
	return new Promise((resolve, reject) => {
		const timer = setTimeout(() => reject(new Error(`${bin}: no start line within 20 s; stderr: ${err}`)), 20000);
		p.stdout.on('data', (d) => {
			out += d;
			const m = out.match(re);
			if (m) {
				clearTimeout(timer);
				resolve(m);
			}
		});
		p.once('exit', (code) => {
			clearTimeout(timer);
			reject(new Error(`${bin} exited (${code}) before starting: ${err}`));
		});
	});
}

// Wait for a condition (an async predicate), up to ms.
async function waitFor(what, fn, ms = 20000) {
	const end = Date.now() + ms;
	for (;;) {
		try {
			if (await fn())
				return;
		} catch { /* not yet */ }
		if (Date.now() > end)
			throw new Error(`timed out waiting for ${what}`);
		await new Promise((r) => setTimeout(r, 50));
	}
}

async function startServe() {
	const qport = await freePort();
	await start('vecdb', ['serve', '--data', join(tmp, 'data'), '--host', '127.0.0.1',
		'--port', '0', '--qdrant-port', String(qport), '--api-key', KEY],
	/Qdrant API on http:\/\/127\.0\.0\.1:(\d+)/);
	return `http://127.0.0.1:${qport}`;
}

async function startCluster() {
	const shards = [];
	for (let i = 0; i < 3; i++) {
		const dir = join(tmp, `n${i}`);
		mkdirSync(dir);
		const m = await start('vecdb-node', ['--data', dir, '--rpc', 'tcp://127.0.0.1:0',
			'--admin-port', '0'], /rpc tcp:\/\/127\.0\.0\.1:(\d+)/);
		shards.push({ id: i, primary: `tcp://127.0.0.1:${m[1]}`, replicas: [] });
	}
	const topo = join(tmp, 'topology.json');
	writeFileSync(topo, JSON.stringify({ shards }));
	const qport = await freePort();
	const m = await start('vecdb-router', ['--topology', topo, '--host', '127.0.0.1',
		'--port', '0', '--qdrant-port', String(qport), '--api-key', KEY],
	/serving http:\/\/127\.0\.0\.1:(\d+).* qdrant http:\/\/127\.0\.0\.1:(\d+)/);
	const native = `http://127.0.0.1:${m[1]}`;
	await waitFor('the router to reach every shard', async () =>
		(await fetch(`${native}/ready`)).status === 200);
	return `http://127.0.0.1:${m[2]}`;
}

// The error a call must fail with: its HTTP status and a message part.
async function rejects(promise, status, part) {
	try {
		await promise;
	} catch (e) {
		assert.equal(e.status, status, `status of ${e.message}`);
		const msg = JSON.stringify(e.data ?? e.message);
		assert.ok(msg.includes(part), `"${part}" not in ${msg}`);
		return;
	}
	assert.fail(`expected a ${status} error`);
}

// ---- Qdrant's OpenAPI document (tests/qdrant/README.md): its response
// schemas, as JSON Schema (OpenAPI 3.0's nullable rewritten).
const openapi = JSON.parse(readFileSync(fileURLToPath(new URL('qdrant-1.19-openapi.json', import.meta.url))));
function jsonSchema(s) {
	if (Array.isArray(s))
		return s.map(jsonSchema);
	if (s === null || typeof s !== 'object')
		return s;
	const o = {};
	for (const [k, v] of Object.entries(s))
		if (k !== 'nullable' && k !== 'example')
			o[k] = k === '$ref' ? v.replace('#/components/', 'qdrant#/components/') : jsonSchema(v);
	if (s.nullable !== true)
		return o;
	if (Object.keys(o).length === 0)
		return { type: 'null' };
	if (typeof o.type === 'string' && !o.enum)
		return { ...o, type: [o.type, 'null'] };
	return { anyOf: [o, { type: 'null' }] };
}
const ajv = new Ajv({ strict: false, validateFormats: false, allErrors: true });
ajv.addSchema({ $id: 'qdrant', components: jsonSchema(openapi.components) });
const validators = new Map();

// The document's 200 response schema of METHOD path (a concrete path,
// matched against the templates), compiled once.
function responseValidator(method, path) {
	const segs = path.split('?')[0].split('/').filter(Boolean);
	let best = null;
	for (const tmpl of Object.keys(openapi.paths)) {
		const ts = tmpl.split('/').filter(Boolean);
		if (ts.length !== segs.length || !openapi.paths[tmpl][method.toLowerCase()])
			continue;
		const literal = ts.filter((t, i) => t === segs[i]).length;
		if (ts.every((t, i) => t.startsWith('{') || t === segs[i]) && (!best || literal > best.literal))
			best = { tmpl, literal };
	}
	assert.ok(best, `no route ${method} ${path} in Qdrant's OpenAPI document`);
	const key = `${method} ${best.tmpl}`;
	if (!validators.has(key)) {
		const op = openapi.paths[best.tmpl][method.toLowerCase()];
		validators.set(key, ajv.compile(jsonSchema(op.responses['200'].content['application/json'].schema)));
	}
	return validators.get(key);
}

// A request whose 200 answer must fit the document's schema.
async function conforms(url, method, path, body) {
	const r = await fetch(url + path, {
		method, headers: { 'api-key': KEY, 'content-type': 'application/json' },
		body: body === undefined ? undefined : JSON.stringify(body),
	});
	const text = await r.text();
	assert.equal(r.status, 200, `${method} ${path}: ${text}`);
	const v = responseValidator(method, path);
	assert.ok(v(JSON.parse(text)), `${method} ${path} does not fit Qdrant's schema: ${JSON.stringify(v.errors)} in ${text.slice(0, 600)}`);
}

const close = (a, b, eps = 1e-4) => Math.abs(a - b) <= eps;
const dot = (a, b) => a.reduce((s, x, i) => s + x * b[i], 0);
const norm = (a) => Math.sqrt(dot(a, a));
const cosine = (a, b) => dot(a, b) / (norm(a) * norm(b));
const euclid = (a, b) => Math.sqrt(a.reduce((s, x, i) => s + (x - b[i]) ** 2, 0));

// Deterministic points: 40 of 4 dimensions, a city and a number each.
function points() {
	let s = 7;
	const rnd = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) - 0.5;
	const cities = ['Berlin', 'Paris', 'Rome', 'Oslo'];
	return Array.from({ length: 40 }, (_, i) => ({
		id: i + 1,
		vector: [rnd(), rnd(), rnd(), rnd()],
		payload: { city: cities[i % 4], n: i, tags: i % 2 ? ['odd'] : ['even'], nested: { k: i % 3 } },
	}));
}

async function session(url) {
	const client = new QdrantClient({ url, apiKey: KEY, checkCompatibility: false });
	const pts = points();

	// --- service and keys
	const info = await client.versionInfo();
	assert.match(info.version, /^1\.\d+\.\d+$/);
	const anon = new QdrantClient({ url, checkCompatibility: false });
	await rejects(anon.getCollections(), 401, 'API key');
	for (const path of ['/healthz', '/livez', '/readyz']) {
		const r = await fetch(url + path);
		assert.equal(r.status, 200, path);
	}

	// --- collections
	await client.createCollection('qc', { vectors: { size: 4, distance: 'Cosine' }, hnsw_config: { m: 8, ef_construct: 64 } });
	await rejects(client.createCollection('qc', { vectors: { size: 4, distance: 'Cosine' } }), 409, 'already exists');
	await rejects(client.createCollection('bad', { vectors: { size: 4, distance: 'Hamming' } }), 400, 'distance');
	assert.deepEqual(await client.collectionExists('qc'), { exists: true });
	assert.deepEqual(await client.collectionExists('nope'), { exists: false });
	const names = (await client.getCollections()).collections.map((c) => c.name);
	assert.ok(names.includes('qc'));
	await rejects(client.getCollection('nope'), 404, "doesn't exist");
	assert.equal(await client.deleteCollection('nope'), false);

	// --- points: the list form and the batch form
	let r = await client.upsert('qc', { wait: true, points: pts.slice(0, 30) });
	assert.equal(r.status, 'completed');
	const rest = pts.slice(30);
	await client.upsert('qc', {
		wait: true,
		batch: { ids: rest.map((p) => p.id), vectors: rest.map((p) => p.vector), payloads: rest.map((p) => p.payload) },
	});
	await rejects(client.upsert('qc', { points: [{ id: 99, vector: [1, 2, 3] }] }), 400, 'dimension');
	await rejects(client.upsert('nope', { points: [{ id: 1, vector: [1, 2, 3, 4] }] }), 404, "doesn't exist");
	let col = await client.getCollection('qc');
	assert.equal(col.points_count, 40);
	assert.equal(col.config.params.vectors.size, 4);
	assert.equal(col.config.params.vectors.distance, 'Cosine');
	assert.equal(col.config.hnsw_config.m, 8);
	assert.equal(col.config.hnsw_config.ef_construct, 64);
	assert.ok(['green', 'yellow'].includes(col.status));

	// retrieve: cosine vectors come back normalised, payloads whole
	const got = await client.retrieve('qc', { ids: [3, 1, 1000], with_payload: true, with_vector: true });
	assert.deepEqual(got.map((p) => p.id), [3, 1]);
	const v1 = pts[0].vector, n1 = norm(v1);
	got[1].vector.forEach((x, i) => assert.ok(close(x, v1[i] / n1), 'normalised vector'));
	assert.deepEqual(got[1].payload, pts[0].payload);
	const sel = await client.retrieve('qc', { ids: [2], with_payload: { include: ['city', 'nested.k'] } });
	assert.deepEqual(sel[0].payload, { city: pts[1].payload.city, nested: { k: pts[1].payload.nested.k } });
	const exc = await client.retrieve('qc', { ids: [2], with_payload: { exclude: ['tags', 'nested'] } });
	assert.deepEqual(exc[0].payload, { city: pts[1].payload.city, n: 1 });
	// reals come back to their last digit, whole or cut to some keys
	const reals = { price: 19.990000000000002, ratio: 1.23456789012345, tiny: 2.5e-7 };
	await client.setPayload('qc', { payload: reals, points: [2] });
	assert.deepEqual((await client.retrieve('qc', { ids: [2] }))[0].payload, { ...pts[1].payload, ...reals });
	assert.deepEqual((await client.retrieve('qc', { ids: [2], with_payload: { include: ['ratio'] } }))[0].payload,
		{ ratio: reals.ratio });
	assert.deepEqual((await client.retrieve('qc', { ids: [2], with_payload: { exclude: ['city', 'n', 'tags', 'nested'] } }))[0].payload,
		reals);
	await client.deletePayload('qc', { keys: Object.keys(reals), points: [2] });
	assert.deepEqual((await client.retrieve('qc', { ids: [2] }))[0].payload, pts[1].payload);

	// --- count and scroll
	assert.equal((await client.count('qc', { exact: true })).count, 40);
	assert.equal((await client.count('qc', { filter: { must: [{ key: 'city', match: { value: 'Rome' } }] } })).count, 10);
	let page = await client.scroll('qc', { limit: 15, with_payload: false });
	assert.equal(page.points.length, 15);
	assert.equal(page.points[0].id, 1);
	assert.equal(page.points[0].payload, undefined);
	assert.equal(page.next_page_offset, 16);
	page = await client.scroll('qc', { limit: 100, offset: 31, filter: { must: [{ key: 'tags', match: { any: ['odd'] } }] } });
	assert.deepEqual(page.points.map((p) => p.id), [32, 34, 36, 38, 40]);
	assert.equal(page.next_page_offset, null);

	// Qdrant's other filter conditions
	const nf = async (filter) => (await client.count('qc', { filter })).count;
	assert.equal(await nf({ must: [{ key: 'city', match: { text: 'ri' } }] }), 10); // Paris
	assert.equal(await nf({ must: [{ key: 'tags', values_count: { gte: 1 } }] }), 40);
	assert.equal(await nf({ must: [{ is_empty: { key: 'missing' } }] }), 40);
	assert.equal(await nf({ must: [{ is_null: { key: 'city' } }] }), 0);
	assert.equal(await nf({
		min_should: { conditions: [{ key: 'city', match: { value: 'Rome' } }, { key: 'n', range: { lt: 5 } },
			{ key: 'tags', match: { value: 'odd' } }], min_count: 2 },
	}), pts.filter((p) => [p.payload.city === 'Rome', p.payload.n < 5, p.payload.tags[0] === 'odd']
		.filter(Boolean).length >= 2).length);
	await client.setPayload('qc', { payload: { when: '2024-05-01T14:00:00+02:00' }, points: [5] });
	await client.setPayload('qc', { payload: { when: '2024-05-03T00:00:00Z' }, points: [6] });
	assert.deepEqual((await client.scroll('qc', {
		filter: { must: [{ key: 'when', datetime_range: { gte: '2024-05-01T12:00:00Z', lt: '2024-05-02' } }] },
	})).points.map((p) => p.id), [5]);
	assert.equal(await nf({ must: [{ has_id: [1, 5, 999] }] }), 2);
	assert.equal(await nf({ must_not: [{ has_id: [1, 5] }], must: [{ key: 'city', match: { value: 'Berlin' } }] }), 8);
	assert.equal(await nf({ must: [{ has_vector: '' }] }), 40);
	await rejects(client.count('qc', { filter: { must: [{ has_id: [-1] }] } }), 400, 'has_id');

	// --- query: nearest, against an exact reference (exact: true)
	const q = [0.3, -0.2, 0.1, 0.4];
	const ref = pts.map((p) => ({ id: p.id, score: cosine(q, p.vector), p }))
		.sort((a, b) => b.score - a.score || a.id - b.id);
	let res = await client.query('qc', { query: q, limit: 5, with_payload: true, params: { exact: true } });
	assert.deepEqual(res.points.map((p) => p.id), ref.slice(0, 5).map((x) => x.id));
	res.points.forEach((p, i) => {
		assert.ok(close(p.score, ref[i].score), `score ${p.score} vs ${ref[i].score}`);
		assert.equal(p.version, 0);
		assert.deepEqual(p.payload, ref[i].p.payload);
	});
	res = await client.query('qc', { query: { nearest: q }, limit: 3, offset: 2, params: { exact: true } });
	assert.deepEqual(res.points.map((p) => p.id), ref.slice(2, 5).map((x) => x.id));
	assert.equal(res.points[0].payload, undefined);
	// between two scores, clear of float32 rounding
	const thr = (ref[6].score + ref[7].score) / 2;
	res = await client.query('qc', { query: q, limit: 40, score_threshold: thr, params: { exact: true } });
	assert.deepEqual(res.points.map((p) => p.id), ref.filter((x) => x.score >= thr).map((x) => x.id));
	const paris = ref.filter((x) => x.p.payload.city === 'Paris');
	res = await client.query('qc', {
		query: q, limit: 3, params: { exact: true },
		filter: { must: [{ key: 'city', match: { value: 'Paris' } }] },
	});
	assert.deepEqual(res.points.map((p) => p.id), paris.slice(0, 3).map((x) => x.id));
	// the HNSW index finds the same best point
	res = await client.query('qc', { query: q, limit: 1, params: { hnsw_ef: 128 } });
	assert.equal(res.points[0].id, ref[0].id);
	await rejects(client.query('qc', { query: [1, 2] }), 400, 'dimension');
	await rejects(client.query('qc', { query: q, using: 'image' }), 400, 'image');

	// by id: the point's own vector, the point itself left out
	const self = pts[4].vector;
	const byId = pts.filter((p) => p.id !== 5).map((p) => ({ id: p.id, score: cosine(self, p.vector) }))
		.sort((a, b) => b.score - a.score);
	res = await client.query('qc', { query: 5, limit: 3, params: { exact: true } });
	assert.deepEqual(res.points.map((p) => p.id), byId.slice(0, 3).map((x) => x.id));

	// recommend, discover, context
	res = await client.query('qc', { query: { recommend: { positive: [1, 2], negative: [3] } }, limit: 4 });
	assert.equal(res.points.length, 4);
	assert.ok(res.points.every((p) => ![1, 2, 3].includes(p.id)));
	res = await client.query('qc', { query: { discover: { target: 7, context: [{ positive: 1, negative: 2 }] } }, limit: 4 });
	assert.equal(res.points.length, 4);
	assert.ok(res.points.every((p) => ![1, 2, 7].includes(p.id)));
	for (let i = 1; i < res.points.length; i++)
		assert.ok(res.points[i - 1].score >= res.points[i].score, 'discover scores descend');
	res = await client.query('qc', { query: { context: [{ positive: 1, negative: 2 }] }, limit: 4 });
	assert.equal(res.points.length, 4);

	// batch
	const batch = await client.queryBatch('qc', { searches: [
		{ query: q, limit: 2, params: { exact: true } },
		{ query: { nearest: q }, limit: 1, params: { exact: true }, with_payload: ['city'] },
	] });
	assert.deepEqual(batch[0].points.map((p) => p.id), ref.slice(0, 2).map((x) => x.id));
	assert.deepEqual(batch[1].points[0].payload, { city: ref[0].p.payload.city });

	// the legacy search route, as older clients call it
	const body = await (await fetch(`${url}/collections/qc/points/search`, {
		method: 'POST', headers: { 'api-key': KEY, 'content-type': 'application/json' },
		body: JSON.stringify({ vector: q, limit: 2, params: { exact: true }, with_payload: true }),
	})).json().then((j) => j.result);
	assert.deepEqual(body.map((p) => p.id), ref.slice(0, 2).map((x) => x.id));

	// --- payload: set (and under a key), overwrite, delete keys, clear
	await client.setPayload('qc', { payload: { color: 'red' }, points: [1, 2] });
	await client.setPayload('qc', { payload: { deep: 1 }, points: [1], key: 'nested' });
	let p1 = (await client.retrieve('qc', { ids: [1] }))[0].payload;
	assert.deepEqual(p1, { ...pts[0].payload, color: 'red', nested: { k: pts[0].payload.nested.k, deep: 1 } });
	// under a key into arrays: one element, or every one
	await client.setPayload('qc', { payload: { arr: [{ a: { x: 1 } }, { a: { x: 2 } }] }, points: [40] });
	await client.setPayload('qc', { payload: { y: 'first' }, points: [40], key: 'arr[0].a' });
	await client.setPayload('qc', { payload: { z: 'all' }, points: [40], key: 'arr[].a' });
	assert.deepEqual((await client.retrieve('qc', { ids: [40] }))[0].payload.arr,
		[{ a: { x: 1, y: 'first', z: 'all' } }, { a: { x: 2, z: 'all' } }]);
	await client.setPayload('qc', { payload: { flag: true }, filter: { must: [{ key: 'city', match: { value: 'Oslo' } }] } });
	assert.equal((await client.count('qc', { filter: { must: [{ key: 'flag', match: { value: true } }] } })).count, 10);
	await client.overwritePayload('qc', { payload: { only: 1 }, points: [2] });
	assert.deepEqual((await client.retrieve('qc', { ids: [2] }))[0].payload, { only: 1 });
	await client.deletePayload('qc', { keys: ['color', 'tags'], points: [1] });
	p1 = (await client.retrieve('qc', { ids: [1] }))[0].payload;
	assert.equal(p1.color, undefined);
	assert.equal(p1.tags, undefined);
	assert.equal(p1.city, pts[0].payload.city);
	await client.clearPayload('qc', { points: [3] });
	assert.deepEqual((await client.retrieve('qc', { ids: [3] }))[0].payload, {});

	// --- payload indexes in payload_schema
	await client.createPayloadIndex('qc', { field_name: 'city', field_schema: 'keyword', wait: true });
	await client.createPayloadIndex('qc', { field_name: 'n', field_schema: 'integer', wait: true });
	await rejects(client.createPayloadIndex('qc', { field_name: 'when', field_schema: 'datetime' }), 400, 'datetime');
	col = await client.getCollection('qc');
	assert.equal(col.payload_schema.city.data_type, 'keyword');
	assert.equal(col.payload_schema.n.data_type, 'integer');
	assert.equal((await client.count('qc', { filter: { must: [{ key: 'n', range: { gte: 10, lt: 20 } }] } })).count, 10);
	// ordered by a payload value (the index on n makes it allowed)
	const byN = (await client.scroll('qc', { limit: 100 })).points.filter((p) => typeof p.payload.n === 'number')
		.map((p) => ({ id: p.id, n: p.payload.n }));
	const asc = [...byN].sort((a, b) => a.n - b.n || a.id - b.id);
	const desc = [...byN].sort((a, b) => b.n - a.n || a.id - b.id);
	page = await client.scroll('qc', { limit: 3, order_by: { key: 'n', direction: 'desc' }, with_payload: ['n'] });
	assert.deepEqual(page.points.map((p) => [p.id, p.order_value]), desc.slice(0, 3).map((x) => [x.id, x.n]));
	assert.equal(page.next_page_offset, null);
	page = await client.scroll('qc', { limit: 2, order_by: { key: 'n', start_from: 10 } });
	assert.deepEqual(page.points.map((p) => p.id), asc.filter((x) => x.n >= 10).slice(0, 2).map((x) => x.id));
	res = await client.query('qc', { query: { order_by: 'n' }, limit: 2, offset: 1 });
	assert.deepEqual(res.points.map((p) => [p.id, p.score]), asc.slice(1, 3).map((x) => [x.id, 0]));
	await rejects(client.scroll('qc', { order_by: 'nested.k' }), 400, 'range index');
	// a payload real's order_value comes back whole
	await client.setPayload('qc', { payload: { price: 19.990000000000002 }, points: [5] });
	await client.setPayload('qc', { payload: { price: 1.23456789012345 }, points: [6] });
	await client.createPayloadIndex('qc', { field_name: 'price', field_schema: 'float', wait: true });
	page = await client.scroll('qc', { limit: 2, order_by: 'price', with_payload: false });
	assert.deepEqual(page.points.map((p) => [p.id, p.order_value]), [[6, 1.23456789012345], [5, 19.990000000000002]]);
	await client.deletePayloadIndex('qc', 'price');
	await client.deletePayload('qc', { keys: ['price'], points: [5, 6] });
	await client.deletePayloadIndex('qc', 'n');
	assert.equal((await client.getCollection('qc')).payload_schema.n, undefined);

	// --- groups and facets, against the points as they are now
	const now = (await client.scroll('qc', { limit: 100, with_payload: true, with_vector: true })).points;
	const nowRef = now.map((p) => ({ id: p.id, city: p.payload.city, score: cosine(q, p.vector) }))
		.sort((a, b) => b.score - a.score || a.id - b.id);
	const wantGroups = [];
	for (const h of nowRef) {
		if (h.city === undefined)
			continue;
		let g = wantGroups.find((x) => x.id === h.city);
		if (!g && wantGroups.length < 3)
			wantGroups.push(g = { id: h.city, hits: [] });
		if (g && g.hits.length < 2)
			g.hits.push(h.id);
	}
	const groups = await client.queryGroups('qc', { query: q, group_by: 'city', group_size: 2, limit: 3, params: { exact: true } });
	assert.deepEqual(groups.groups.map((g) => ({ id: g.id, hits: g.hits.map((h) => h.id) })), wantGroups);
	const counts = {};
	for (const p of now)
		if (p.payload.city !== undefined)
			counts[p.payload.city] = (counts[p.payload.city] || 0) + 1;
	const wantFacet = Object.entries(counts).map(([value, count]) => ({ value, count }))
		.sort((a, b) => b.count - a.count || (a.value < b.value ? -1 : 1));
	assert.deepEqual((await client.facet('qc', { key: 'city', limit: 10 })).hits, wantFacet);
	assert.deepEqual((await client.facet('qc', { key: 'city', limit: 1, filter: { must: [{ key: 'n', range: { lt: 8 } }] } })).hits.length, 1);
	await rejects(client.facet('qc', { key: 'tags' }), 400, 'Index required');

	// --- several updates in one batch
	const ops = await client.batchUpdate('qc', { operations: [
		{ upsert: { points: [{ id: 500, vector: [1, 1, 1, 1], payload: { city: 'Lima' } }] } },
		{ set_payload: { payload: { batch: true }, points: [500, 7] } },
		{ delete: { points: [8] } },
	] });
	assert.equal(ops.length, 3);
	assert.deepEqual((await client.retrieve('qc', { ids: [500, 7, 8] })).map((p) => [p.id, p.payload.batch]), [[500, true], [7, true]]);
	await client.delete('qc', { points: [500] });
	await client.upsert('qc', { points: [pts[7]] });

	// --- delete by ids and by filter
	await client.delete('qc', { points: [1, 2] });
	assert.equal((await client.count('qc')).count, 38);
	await client.delete('qc', { filter: { must: [{ key: 'city', match: { value: 'Oslo' } }] } });
	assert.equal((await client.count('qc')).count, 28);
	assert.equal((await client.retrieve('qc', { ids: [4] })).length, 0);
	await rejects(fetch(`${url}/collections/qc/points/4`, { headers: { 'api-key': KEY } }).then(async (x) => {
			if (x.status !== 200)
				throw Object.assign(new Error('http'), { status: x.status, data: await x.json() });
		}), 404, 'No point');

	// --- Euclid: the score is the distance, lower first
	await client.createCollection('qe', { vectors: { size: 4, distance: 'Euclid' } });
	await client.upsert('qe', { points: pts.slice(0, 20) });
	const eref = pts.slice(0, 20).map((p) => ({ id: p.id, d: euclid(q, p.vector) })).sort((a, b) => a.d - b.d);
	res = await client.query('qe', { query: q, limit: 3, params: { exact: true } });
	assert.deepEqual(res.points.map((p) => p.id), eref.slice(0, 3).map((x) => x.id));
	res.points.forEach((p, i) => assert.ok(close(p.score, eref[i].d), `euclid ${p.score} vs ${eref[i].d}`));
	res = await client.query('qe', { query: q, limit: 20, score_threshold: eref[4].d + 1e-6, params: { exact: true } });
	assert.deepEqual(res.points.map((p) => p.id), eref.slice(0, 5).map((x) => x.id));

	// --- snapshots: create, list, recover, download, upload, delete
	const snap = await client.createSnapshot('qe');
	assert.match(snap.name, /\.snapshot$/);
	assert.ok(snap.size > 0 && /^[0-9a-f]{64}$/.test(snap.checksum));
	assert.deepEqual((await client.listSnapshots('qe')).map((x) => x.name), [snap.name]);
	await client.delete('qe', { points: [1, 2, 3] });
	assert.equal((await client.count('qe')).count, 17);
	assert.equal(await client.recoverSnapshot('qe', { location: `file:///anywhere/${snap.name}`, checksum: snap.checksum }), true);
	assert.equal((await client.count('qe')).count, 20);
	await rejects(client.recoverSnapshot('qe', { location: 'http://example.com/x.snapshot' }), 400, 'file://');
	await rejects(client.recoverSnapshot('qe', { location: 'file:///tmp/none.snapshot' }), 404, 'no snapshot');
	const file = await fetch(`${url}/collections/qe/snapshots/${snap.name}`, { headers: { 'api-key': KEY } });
	assert.equal(file.status, 200);
	const bytes = new Uint8Array(await file.arrayBuffer());
	// a router's download is the cluster file: every shard's snapshot
	// with its checksum, larger than their sum
	if (target === 'serve')
		assert.equal(bytes.length, snap.size);
	else
		assert.ok(bytes.length > snap.size);
	await client.delete('qe', { points: [4] });
	const form = new FormData();
	form.append('snapshot', new Blob([bytes]), snap.name);
	const up = await fetch(`${url}/collections/qe/snapshots/upload?priority=snapshot`, {
		method: 'POST', headers: { 'api-key': KEY }, body: form,
	});
	assert.equal(up.status, 200, await up.clone().text());
	assert.equal((await up.json()).result, true);
	assert.equal((await client.count('qe')).count, 20);
	assert.equal(await client.deleteSnapshot('qe', snap.name), true);
	assert.deepEqual(await client.listSnapshots('qe'), []);

	// --- named and sparse vectors, vector updates, hybrid fusion
	await client.createCollection('qn', {
		vectors: { image: { size: 3, distance: 'Dot' }, text: { size: 2, distance: 'Cosine' } },
		sparse_vectors: { bm25: { modifier: 'idf' } },
	});
	col = await client.getCollection('qn');
	assert.equal(col.config.params.vectors.image.size, 3);
	assert.equal(col.config.params.vectors.image.distance, 'Dot');
	assert.equal(col.config.params.sparse_vectors.bm25.modifier, 'idf');
	const named = [
		{ id: 1, vector: { image: [1, 0, 0], text: [1, 0], bm25: { indices: [1, 5], values: [1, 2] } }, payload: { k: 'a' } },
		{ id: 2, vector: { image: [0, 1, 0], text: [0, 1], bm25: { indices: [5], values: [1] } }, payload: { k: 'b' } },
		{ id: 3, vector: { image: [0.5, 0.5, 0], bm25: { indices: [9], values: [3] } }, payload: { k: 'c' } },
	];
	await client.upsert('qn', { points: named });
	res = await client.query('qn', { query: [2, 1, 0], using: 'image', limit: 3, with_vector: ['image'] });
	assert.deepEqual(res.points.map((p) => p.id), [1, 3, 2]);
	assert.ok(close(res.points[0].score, 2));
	assert.deepEqual(res.points[0].vector, { image: [1, 0, 0] });
	res = await client.query('qn', { query: { indices: [5], values: [1] }, using: 'bm25', limit: 3 });
	assert.deepEqual(res.points.map((p) => p.id), [1, 2]);
	assert.ok(res.points[0].score > res.points[1].score);
	await rejects(client.query('qn', { query: [1, 0, 0], limit: 1 }), 400, 'using');
	const fused = await client.query('qn', {
		prefetch: [{ query: [0, 1, 0], using: 'image', limit: 3 }, { query: { indices: [1, 9], values: [1, 1] }, using: 'bm25', limit: 3 }],
		query: { fusion: 'rrf' }, limit: 3,
	});
	// rrf: 1 / (2 + position) summed over the two lists
	const rrf = {};
	const dense = [2, 3, 1], sparse = [3, 1];
	dense.forEach((id, i) => { rrf[id] = (rrf[id] || 0) + 1 / (2 + i); });
	sparse.forEach((id, i) => { rrf[id] = (rrf[id] || 0) + 1 / (2 + i); });
	const rrfRef = Object.entries(rrf).sort((a, b) => b[1] - a[1] || a[0] - b[0]);
	assert.deepEqual(fused.points.map((p) => p.id), rrfRef.map(([id]) => Number(id)));
	fused.points.forEach((p, i) => assert.ok(close(p.score, rrfRef[i][1]), `rrf ${p.score} vs ${rrfRef[i][1]}`));
	res = await client.query('qn', {
		prefetch: [{ query: [0, 1, 0], using: 'image' }, { query: { indices: [1, 9], values: [1, 1] }, using: 'bm25' }],
		query: { fusion: 'dbsf' }, limit: 2,
	});
	assert.equal(res.points.length, 2);
	await client.updateVectors('qn', { points: [{ id: 3, vector: { text: [0.6, 0.8] } }] });
	let p3 = (await client.retrieve('qn', { ids: [3], with_vector: true }))[0];
	assert.deepEqual(p3.vector.text.map((x) => Math.round(x * 1e4) / 1e4), [0.6, 0.8]);
	assert.deepEqual(p3.vector.image, [0.5, 0.5, 0]);
	assert.deepEqual(p3.payload, { k: 'c' });
	await client.deleteVectors('qn', { points: [3], vector: ['image'] });
	p3 = (await client.retrieve('qn', { ids: [3], with_vector: true }))[0];
	assert.equal(p3.vector.image, undefined);
	assert.ok(p3.vector.text);
	res = await client.query('qn', { query: [1, 1, 1], using: 'image', limit: 3 });
	assert.deepEqual(res.points.map((p) => p.id).sort(), [1, 2]);
	assert.deepEqual((await client.scroll('qn', { filter: { must: [{ has_vector: 'image' }] } })).points.map((p) => p.id), [1, 2]);
	assert.deepEqual((await client.scroll('qn', { filter: { must_not: [{ has_vector: 'text' }] } })).points.map((p) => p.id), []);
	assert.equal((await client.count('qn', { filter: { must: [{ has_vector: 'bm25' }] } })).count, 3);

	// --- aliases: usable wherever a collection name is
	assert.equal(await client.updateCollectionAliases({ actions: [
		{ create_alias: { collection_name: 'qc', alias_name: 'prod' } },
		{ create_alias: { collection_name: 'qe', alias_name: 'old' } },
	] }), true);
	assert.deepEqual((await client.getAliases()).aliases.sort((a, b) => (a.alias_name < b.alias_name ? -1 : 1)),
		[{ alias_name: 'old', collection_name: 'qe' }, { alias_name: 'prod', collection_name: 'qc' }]);
	assert.deepEqual((await client.getCollectionAliases('qc')).aliases, [{ alias_name: 'prod', collection_name: 'qc' }]);
	assert.equal((await client.count('prod')).count, (await client.count('qc')).count);
	res = await client.query('prod', { query: q, limit: 2, params: { exact: true } });
	assert.deepEqual(res.points.map((p) => p.id), (await client.query('qc', { query: q, limit: 2, params: { exact: true } })).points.map((p) => p.id));
	assert.ok(!(await client.getCollections()).collections.some((c) => c.name === 'qdrant-aliases'));
	// switch an alias in one request, rename, delete
	await client.updateCollectionAliases({ actions: [
		{ delete_alias: { alias_name: 'old' } },
		{ create_alias: { collection_name: 'qc', alias_name: 'old' } },
		{ rename_alias: { old_alias_name: 'prod', new_alias_name: 'live' } },
	] });
	assert.equal((await client.count('old')).count, (await client.count('qc')).count);
	assert.equal((await client.getCollection('live')).points_count, (await client.count('qc')).count);
	await rejects(client.count('prod'), 404, "doesn't exist");
	await rejects(client.updateCollectionAliases({ actions: [{ create_alias: { collection_name: 'nope', alias_name: 'x' } }] }), 404, 'nope');
	await rejects(client.updateCollectionAliases({ actions: [{ create_alias: { collection_name: 'qc', alias_name: 'qe' } }] }), 409, 'alias');
	await rejects(client.updateCollectionAliases({ actions: [{ delete_alias: { alias_name: 'never' } }] }), 404, 'never');
	await client.updateCollectionAliases({ actions: [{ delete_alias: { alias_name: 'old' } }] });
	assert.deepEqual((await client.getAliases()).aliases, [{ alias_name: 'live', collection_name: 'qc' }]);

	// --- an unnamed vector beside sparse ones: a point may carry either
	await client.createCollection('qs', { vectors: { size: 4, distance: 'Dot' }, sparse_vectors: { 'sparse-text': {} } });
	await client.upsert('qs', { points: [
		{ id: 1, vector: [0.05, 0.61, 0.76, 0.74], payload: { city: 'Berlin' } },
		{ id: 9, vector: { 'sparse-text': { indices: [66, 12], values: [0.5, 0.5] } } },
		{ id: 10, vector: { '': [0.25, 0.98, 0.14, 0.43], 'sparse-text': { indices: [1], values: [0.1] } } },
	] });
	col = await client.getCollection('qs');
	assert.deepEqual([col.config.params.vectors.size, col.config.params.vectors.distance], [4, 'Dot']);
	assert.deepEqual(Object.keys(col.config.params.sparse_vectors), ['sparse-text']);
	assert.equal(col.points_count, 3);
	const qsAll = await client.retrieve('qs', { ids: [1, 9, 10], with_vector: true });
	// the unnamed vector alone comes as it is, as Qdrant gives it
	assert.deepEqual(qsAll.map((p) => p.vector), [
		[0.05, 0.61, 0.76, 0.74],
		{ 'sparse-text': { indices: [12, 66], values: [0.5, 0.5] } },
		{ '': [0.25, 0.98, 0.14, 0.43], 'sparse-text': { indices: [1], values: [0.1] } },
	]);
	res = await client.query('qs', { query: [0.2, 0.1, 0.9, 0.7], limit: 5 });
	assert.deepEqual(res.points.map((p) => [p.id, p.score]), [[1, 1.273], [10, 0.575]]);
	// Qdrant's older condition forms: is_empty and is_null as flags of a key
	assert.deepEqual((await client.scroll('qs', { filter: { must: [{ key: 'city', is_empty: true }] } })).points.map((p) => p.id), [9, 10]);
	assert.deepEqual((await client.scroll('qs', { filter: { must: [{ key: 'city', is_empty: false }] } })).points.map((p) => p.id), [1]);
	assert.deepEqual((await client.scroll('qs', { filter: { must: [{ key: 'city', is_null: false }] } })).points.map((p) => p.id), [1, 9, 10]);
	res = await client.query('qs', { query: { indices: [12], values: [2] }, using: 'sparse-text' });
	assert.deepEqual(res.points.map((p) => [p.id, p.score]), [[9, 1]]);
	assert.deepEqual((await client.retrieve('qs', { ids: [10], with_vector: [''] }))[0].vector, [0.25, 0.98, 0.14, 0.43]);
	assert.equal(await client.deleteCollection('qs'), true);

	// --- quantization through PATCH
	assert.equal(await client.updateCollection('qc', { quantization_config: { scalar: { type: 'int8', quantile: 0.99 } } }), true);
	col = await client.getCollection('qc');
	assert.equal(col.config.quantization_config.scalar.type, 'int8');
	await rejects(client.updateCollection('qc', { hnsw_config: { m: 32 } }), 400, 'hnsw_config');

	// --- answers fit Qdrant's published schemas (and the check can fail)
	const C = '/collections';
	assert.equal(responseValidator('GET', `${C}/qc`)({ result: { status: 'green' }, status: 'ok', time: 0 }), false);
	assert.equal(responseValidator('POST', `${C}/qc/points/query`)({ result: { points: [{ id: 1, score: 1 }] } }), false);
	for (const [m, path, body] of [
		['GET', C], ['GET', `${C}/qc`], ['GET', `${C}/qn`], ['GET', `${C}/qc/exists`],
		['PUT', `${C}/qc/points?wait=true`, { points: [{ id: 900, vector: [1, 2, 3, 4], payload: { city: 'Oslo' } }] }],
		['POST', `${C}/qc/points`, { ids: [900, 5], with_vector: true }],
		['GET', `${C}/qc/points/900`],
		['POST', `${C}/qc/points/query`, { query: q, limit: 3, with_payload: true, with_vector: true }],
		['POST', `${C}/qn/points/query`, { prefetch: [{ query: [1, 0, 0], using: 'image' }], query: { fusion: 'rrf' }, with_vector: true }],
		['POST', `${C}/qc/points/query/batch`, { searches: [{ query: q }, { query: 5 }] }],
		['POST', `${C}/qc/points/query/groups`, { query: q, group_by: 'city', limit: 2 }],
		['POST', `${C}/qc/points/scroll`, { limit: 2, with_vector: true }],
		['POST', `${C}/qc/points/count`, {}],
		['POST', `${C}/qc/facet`, { key: 'city' }],
		['POST', `${C}/qc/points/payload`, { payload: { s: 1 }, points: [900] }],
		['POST', `${C}/qc/points/batch`, { operations: [{ delete: { points: [900] } }] }],
		['PUT', `${C}/qc/index`, { field_name: 'n', field_schema: 'integer' }],
		['GET', `${C}/qc/snapshots`],
		['GET', '/aliases'], ['GET', `${C}/qc/aliases`],
	])
		await conforms(url, m, path, body);
	const legacyPath = `${C}/qc/points/search`;
	await conforms(url, 'POST', legacyPath, { vector: q, limit: 2 }).catch((e) => {
		// 1.19's document no longer lists the legacy routes
		if (!String(e.message).includes('no route'))
			throw e;
	});

	// --- this listener's own requests in its /metrics
	const metrics = await (await fetch(`${url}/metrics`, { headers: { 'api-key': KEY } })).text();
	assert.match(metrics, /vecdb_http_requests_total\{method="POST",route="collections\/:c\/points\/query",code="200"\} [1-9]/);

	// --- what we do not serve is a clear error
	await rejects(client.listFullSnapshots(), 501, 'not supported');

	// --- collections go away
	assert.equal(await client.deleteCollection('qe'), true);
	assert.equal(await client.deleteCollection('qn'), true);
	assert.equal(await client.deleteCollection('qc'), true);
	assert.deepEqual(await client.collectionExists('qc'), { exists: false });
	// the aliases of a collection go with it
	assert.deepEqual((await client.getAliases()).aliases, []);
}

try {
	const url = target === 'cluster' ? await startCluster() : await startServe();
	await session(url);
	await stopAll();
	console.log(`qdrant client session against ${target}: ok`);
	process.exit(0);
} catch (e) {
	console.error(`FAIL (${target}):`, e.stack || e);
	if (e.data)
		console.error('response:', JSON.stringify(e.data));
	process.exit(1);
}
