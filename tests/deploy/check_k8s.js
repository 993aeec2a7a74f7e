#!/usr/bin/env node
// check_k8s.js: offline checks of the rendered Kubernetes manifests.
//
//   node check_k8s.js NAME=RENDERED.yaml:SHARDS:REPLICAS ... [--monitor FILE]
//
// For each rendering (the output of `kubectl kustomize` of one overlay):
//  - every object validates against the Kubernetes schemas of
//    kubernetes-models (types, required fields, enums, formats), and has
//    no field those schemas do not know;
//  - the routers' topology (the ConfigMap) names exactly the pods the node
//    StatefulSets create, by their headless Services' DNS names and the
//    port those Services expose, primaries and replicas in their shards;
//  - it has SHARDS shards of REPLICAS replicas each;
//  - the wiring the rest relies on holds: selectors match pod labels,
//    Service ports target named container ports, $(VAR) references are
//    defined before use, httpGet probes on the nodes' admin HTTP (bound
//    to the pod IP, one container per pod) and on the routers' REST port,
//    resources, non-root pods, the NetworkPolicy (admin port open to the
//    scraper), the PDBs.
// --monitor FILE validates the ServiceMonitor against the operator's schema
// and checks that its ports are named by the Services of the first
// rendering.
// Prints one line per failed check and "N passed, N failed".
'use strict';

const fs = require('fs');
const yaml = require('js-yaml');

let passed = 0;
let failed = 0;

function check(ok, what) {
	if (ok) {
		passed++;
	} else {
		failed++;
		console.log('FAIL: ' + what);
	}
	return ok;
}

// The model class of an object, from its apiVersion and kind.
function modelOf(obj) {
	const [group, version] = obj.apiVersion.includes('/') ?
	    obj.apiVersion.split('/') : ['', obj.apiVersion];
	let mod;
	try {
		if (group === 'monitoring.coreos.com')
			mod = require('@kubernetes-models/prometheus-operator/' +
			    group + '/' + version);
		else
			mod = require('kubernetes-models/' +
			    (group ? group + '/' : '') + version);
	} catch (e) {
		return null;
	}
	return mod[obj.kind] || null;
}

// Wrap obj so that every key the schema validator looks at is recorded:
// the validators read each property their schema defines (and iterate the
// keys of maps such as labels), so a key nobody read is not in the schema.
// kubernetes-models does not reject unknown fields itself, and a misspelt
// field name is the commonest manifest mistake.
function track(obj, path, seen) {
	if (obj === null || typeof obj !== 'object')
		return obj;
	const read = new Set();
	const children = {};
	seen.push({ path, obj, read });
	return new Proxy(obj, {
		get(t, k, r) {
			const v = Reflect.get(t, k, r);
			if (typeof k !== 'string')
				return v;
			read.add(k);
			if (!v || typeof v !== 'object' ||
			    !Object.prototype.hasOwnProperty.call(t, k))
				return v;
			if (!(k in children))
				children[k] = track(v, `${path}/${k}`, seen);
			return children[k];
		},
		has(t, k) {
			if (typeof k === 'string')
				read.add(k);
			return Reflect.has(t, k);
		},
		ownKeys(t) {
			for (const k of Reflect.ownKeys(t))
				if (typeof k === 'string')
					read.add(k);
			return Reflect.ownKeys(t);
		},
	});
}

function validateSchema(where, obj) {
	const Model = modelOf(obj);
	if (!check(Model !== null, `${where}: no schema for ` +
	    `${obj.apiVersion} ${obj.kind}`))
		return;
	const what = `${where}: ${obj.kind} ${obj.metadata.name}`;
	const seen = [];
	try {
		// The model's validate, on the tracked plain object.
		Model.prototype.validate.call(track(obj, '', seen));
		check(true, '');
	} catch (e) {
		check(false, `${what}: ${e.message}`);
		return;
	}
	const unknown = [];
	for (const s of seen)
		for (const k of Object.keys(s.obj))
			if (!s.read.has(k))
				unknown.push(`${s.path}/${k}`);
	check(unknown.length === 0, `${what}: unknown fields ` +
	    unknown.join(', '));
}

// True when every label of sel is in labels.
function selects(sel, labels) {
	return Object.entries(sel || {}).every(([k, v]) =>
	    labels && labels[k] === v);
}

// Expand $(VAR) references the way the kubelet does, from env vars defined
// earlier in the list (fieldRef label values come from the pod labels).
// Returns null if a reference is undefined.
function envMap(container, podLabels, where) {
	const env = {};
	for (const e of container.env || []) {
		let v = e.value;
		if (e.valueFrom && e.valueFrom.fieldRef) {
			const p = e.valueFrom.fieldRef.fieldPath;
			const m = /^metadata\.labels\['(.+)'\]$/.exec(p);
			if (m)
				v = podLabels[m[1]];
			else if (p === 'metadata.name')
				v = '<pod>';
			else if (p === 'status.podIP')
				v = '<pod-ip>';
			check(v !== undefined, `${where}: ${e.name} reads ` +
			    `${p}, which the pod does not have`);
		}
		if (typeof v === 'string')
			v = expand(v, env, `${where}: env ${e.name}`);
		env[e.name] = v;
	}
	return env;
}

function expand(s, env, where) {
	return s.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (all, name) => {
		check(name in env, `${where}: $(${name}) is not defined ` +
		    'before it is used');
		return env[name];
	});
}

function containerPort(c, name) {
	const p = (c.ports || []).find((p) => p.name === name);
	return p ? p.containerPort : undefined;
}

// A setting of our binaries as the container gives it: the flag
// (--name=value or --name value) wins over the variable, as in the code.
function setting(args, env, flag, variable) {
	for (let i = args.length - 1; i >= 0; i--) {
		if (args[i].startsWith(`--${flag}=`))
			return args[i].slice(flag.length + 3);
		if (args[i] === `--${flag}` && i + 1 < args.length)
			return args[i + 1];
	}
	return env[variable];
}

// An httpGet probe on path and the container's named port (by name or
// number), over HTTPS when https.
function httpProbe(p, path, c, portName, https) {
	const g = p && p.httpGet;
	return !!g && g.path === path && (g.port === portName ||
	    g.port === containerPort(c, portName)) &&
	    (g.scheme || 'HTTP') === (https ? 'HTTPS' : 'HTTP');
}

// The scheme of a process's rpc urls, from its TLS settings: all three
// files mounted from one Secret volume, or none (tcp).
function rpcScheme(spec, c, env, args, where) {
	const files = ['ca', 'cert', 'key'].map((f) =>
	    setting(args, env, `tls-${f}`, `VECDB_TLS_${f.toUpperCase()}`));
	const n = files.filter((f) => f !== undefined).length;
	check(n === 0 || n === 3, `${where}: ${n} of the 3 TLS files set`);
	if (n !== 3)
		return 'tcp';
	for (const f of files) {
		const m = (c.volumeMounts || []).find((m) =>
		    f.startsWith(m.mountPath + '/'));
		const v = m && (spec.volumes || []).find((v) =>
		    v.name === m.name);
		check(v && v.secret && v.secret.secretName, `${where}: ${f} ` +
		    'is not in a mounted Secret');
	}
	return 'tls+tcp';
}

// The checks of one rendering.
function checkRendering(name, file, wantShards, wantReplicas) {
	const docs = yaml.loadAll(fs.readFileSync(file, 'utf8'))
	    .filter((d) => d);
	check(docs.length > 0, `${name}: nothing rendered`);
	docs.forEach((d) => validateSchema(name, d));
	const of = (kind) => docs.filter((d) => d.kind === kind);
	const services = new Map(of('Service')
	    .map((s) => [s.metadata.name, s]));

	// Every container: resources with requests and limits.
	for (const w of [...of('StatefulSet'), ...of('Deployment')]) {
		for (const c of w.spec.template.spec.containers) {
			const r = c.resources || {};
			check(r.requests && r.limits, `${name}: ` +
			    `${w.metadata.name}/${c.name} has no requests ` +
			    'and limits');
			check(c.securityContext &&
			    c.securityContext.allowPrivilegeEscalation === false,
			    `${name}: ${w.metadata.name}/${c.name} may ` +
			    'escalate privileges');
		}
		const psc = w.spec.template.spec.securityContext || {};
		check(psc.runAsNonRoot === true && psc.runAsUser > 0,
		    `${name}: ${w.metadata.name} may run as root`);
		check(selects(w.spec.selector.matchLabels,
		    w.spec.template.metadata.labels), `${name}: ` +
		    `${w.metadata.name}: selector does not match its pods`);
	}

	// The topology the routers read.
	const cms = of('ConfigMap').filter((c) =>
	    c.data && 'topology.json' in c.data);
	if (!check(cms.length === 1, `${name}: expected one topology ` +
	    `ConfigMap, found ${cms.length}`))
		return [];
	let topo;
	try {
		topo = JSON.parse(cms[0].data['topology.json']);
	} catch (e) {
		check(false, `${name}: topology.json: ${e.message}`);
		return [];
	}
	check(topo.shards.length === wantShards, `${name}: ` +
	    `${topo.shards.length} shards, expected ${wantShards}`);
	topo.shards.forEach((s, i) => {
		check(s.id === i, `${name}: shard ${i} has id ${s.id}`);
		check((s.replicas || []).length === wantReplicas, `${name}: ` +
		    `shard ${s.id} has ${(s.replicas || []).length} replicas, ` +
		    `expected ${wantReplicas}`);
	});

	// etcd mode (docs/OPERATIONS.md, Topology in etcd): the routers read
	// the topology from etcd and the nodes' roles are elected there.
	const component = (w) =>
	    w.spec.template.metadata.labels['app.kubernetes.io/component'];
	const etcdSets = of('StatefulSet').filter((w) =>
	    component(w) === 'etcd');
	const nodeSets = of('StatefulSet').filter((w) =>
	    component(w) !== 'etcd');
	const etcdUrls = new Set();
	for (const w of etcdSets) {
		const where = `${name}: ${w.metadata.name}`;
		const svc = services.get(w.spec.serviceName);
		check(w.spec.replicas >= 3 && w.spec.replicas % 2 === 1,
		    `${where}: ${w.spec.replicas} etcd members, not an odd ` +
		    'number of at least 3');
		if (!check(svc && svc.spec.clusterIP === 'None' &&
		    svc.spec.publishNotReadyAddresses === true &&
		    selects(svc.spec.selector, w.spec.template.metadata.labels),
		    `${where}: no headless Service publishing its members`))
			continue;
		const c = w.spec.template.spec.containers[0];
		const cp = containerPort(c, 'client');
		for (let i = 0; i < w.spec.replicas; i++)
			etcdUrls.add(`http://${w.metadata.name}-${i}.` +
			    `${svc.metadata.name}:${cp}`);
	}
	// Every url of a VECDB_ETCD is a member of the etcd rendered here.
	const etcdOf = (env, where) => {
		if (env.VECDB_ETCD === undefined)
			return false;
		const urls = env.VECDB_ETCD.split(',');
		check(etcdUrls.size > 0 && urls.length === etcdUrls.size &&
		    urls.every((u) => etcdUrls.has(u)), `${where}: ` +
		    `VECDB_ETCD ${env.VECDB_ETCD} is not the etcd members ` +
		    `${[...etcdUrls]}`);
		return true;
	};

	// What the StatefulSets create: one DNS name per pod, by shard and role.
	const made = {};
	const schemes = new Set();
	let elected = 0;
	for (const sts of nodeSets) {
		const where = `${name}: ${sts.metadata.name}`;
		const labels = sts.spec.template.metadata.labels;
		const shard = labels['vecdb.io/shard'];
		const role = labels['vecdb.io/role'];
		if (!check(shard !== undefined && (role === 'primary' ||
		    role === 'replica'), `${where}: no shard or role label`))
			continue;
		const svc = services.get(sts.spec.serviceName);
		if (!check(svc, `${where}: serviceName ` +
		    `${sts.spec.serviceName} is no Service`))
			continue;
		check(svc.spec.clusterIP === 'None', `${where}: ` +
		    `${svc.metadata.name} is not headless`);
		check(selects(svc.spec.selector, labels), `${where}: ` +
		    `${svc.metadata.name} does not select its pods`);
		const node = sts.spec.template.spec.containers
		    .find((c) => c.name === 'node');
		if (!check(node, `${where}: no container "node"`))
			continue;
		const sp = svc.spec.ports.find((p) => p.name === 'rpc');
		const cp = containerPort(node, 'rpc');
		if (!check(sp && cp && (sp.targetPort === 'rpc' ||
		    sp.targetPort === cp), `${where}: ${svc.metadata.name} ` +
		    'has no rpc port targeting the node\'s rpc port'))
			continue;
		const env = envMap(node, labels, where);
		const args = (node.args || []).map((a) =>
		    expand(a, env, `${where}: args`));
		if (etcdOf(env, where)) {
			// the role is elected: no mode, no primary to follow
			elected++;
			check(env.VECDB_MODE === undefined &&
			    !args.includes('--primary'), `${where}: a mode or ` +
			    'a --primary beside etcd (the role is elected)');
			check(env.VECDB_SHARD === shard, `${where}: ` +
			    `VECDB_SHARD ${env.VECDB_SHARD}, its label ${shard}`);
			check(env.VECDB_ADVERTISE_URL ===
			    `tcp://<pod-ip>:${cp}`, `${where}: advertises ` +
			    `${env.VECDB_ADVERTISE_URL}, not its pod IP and rpc ` +
			    'port');
		} else
			check(env.VECDB_MODE === role, `${where}: VECDB_MODE is ` +
			    `${env.VECDB_MODE}, its role ${role}`);
		const scheme = rpcScheme(sts.spec.template.spec, node, env, args,
		    where);
		schemes.add(scheme);
		check(env.VECDB_RPC_URL === `${scheme}://0.0.0.0:${cp}`,
		    `${where}: VECDB_RPC_URL ${env.VECDB_RPC_URL} is not ` +
		    `${scheme} on port ${cp}`);
		// The admin HTTP listens on the pod IP at its named port, where
		// the kubelet probes it and Prometheus scrapes it.
		const ap = containerPort(node, 'admin');
		check(ap !== undefined && String(ap) === setting(args, env,
		    'admin-port', 'VECDB_ADMIN_PORT'), `${where}: the admin ` +
		    `port ${ap} is not the node's --admin-port`);
		check(setting(args, env, 'admin-host', 'VECDB_ADMIN_HOST') ===
		    '0.0.0.0', `${where}: the admin HTTP does not listen on ` +
		    'the pod IP (--admin-host 0.0.0.0)');
		check(httpProbe(node.livenessProbe, '/health', node, 'admin'),
		    `${where}: no /health liveness probe on the admin port`);
		check(httpProbe(node.readinessProbe, '/ready', node, 'admin'),
		    `${where}: no /ready readiness probe on the admin port`);
		const ann = sts.spec.template.metadata.annotations || {};
		check(ann['prometheus.io/port'] === String(ap), `${where}: ` +
		    `prometheus.io/port ${ann['prometheus.io/port']} is not ` +
		    `the admin port ${ap}`);
		const sa = svc.spec.ports.find((p) => p.name === 'admin');
		check(sa && (sa.targetPort === 'admin' || sa.targetPort === ap),
		    `${where}: ${svc.metadata.name} has no admin port ` +
		    'targeting the node\'s');
		check(sts.spec.template.spec.containers.length === 1,
		    `${where}: containers beside the node (the admin HTTP ` +
		    'needs no proxy)');
		check((sts.spec.volumeClaimTemplates || []).some((v) =>
		    (node.volumeMounts || []).some((m) =>
		    m.name === v.metadata.name &&
		    m.mountPath === env.VECDB_DATA_DIR)), `${where}: the data ` +
		    'dir is not on a PersistentVolumeClaim');
		const pods = [];
		for (let i = 0; i < sts.spec.replicas; i++)
			pods.push(`${scheme}://${sts.metadata.name}-${i}.` +
			    `${svc.metadata.name}:${sp.port}`);
		made[shard] = made[shard] || { primary: [], replica: [] };
		made[shard][role].push(...pods);
		if (role === 'replica' && env.VECDB_ETCD === undefined) {
			const at = args.indexOf('--primary');
			made[shard].primaryOf = made[shard].primaryOf || [];
			made[shard].primaryOf.push(at >= 0 ? args[at + 1] :
			    undefined);
		}
	}

	check(elected === 0 || elected === nodeSets.length, `${name}: ` +
	    `${elected} of ${nodeSets.length} node StatefulSets on etcd`);
	// The topology names exactly those pods.
	const shardIds = Object.keys(made).map(Number).sort((a, b) => a - b);
	check(JSON.stringify(shardIds) ===
	    JSON.stringify(topo.shards.map((s) => s.id)), `${name}: ` +
	    `StatefulSets make shards ${shardIds}, the topology lists ` +
	    `${topo.shards.map((s) => s.id)}`);
	for (const s of topo.shards) {
		const m = made[s.id];
		if (!m)
			continue;
		check(m.primary.length === 1 && m.primary[0] === s.primary,
		    `${name}: shard ${s.id}: topology primary ${s.primary}, ` +
		    `StatefulSets make ${m.primary}`);
		const want = [...m.replica].sort();
		const got = [...(s.replicas || [])].sort();
		check(JSON.stringify(want) === JSON.stringify(got),
		    `${name}: shard ${s.id}: topology replicas ${got}, ` +
		    `StatefulSets make ${want}`);
		for (const p of m.primaryOf || [])
			check(p === s.primary, `${name}: shard ${s.id}: ` +
			    `replicas follow ${p}, the primary is ${s.primary}`);
	}

	// The routers read that ConfigMap, and their Service exposes REST and
	// the binary API on the ports they listen on.
	const routers = of('Deployment').filter((d) =>
	    d.metadata.labels['app.kubernetes.io/component'] === 'router');
	check(routers.length === 1, `${name}: expected one router ` +
	    `Deployment, found ${routers.length}`);
	for (const d of routers) {
		const where = `${name}: ${d.metadata.name}`;
		const spec = d.spec.template.spec;
		const c = spec.containers[0];
		const env = envMap(c, d.spec.template.metadata.labels, where);
		const args = (c.args || []).map((a) =>
		    expand(a, env, `${where}: args`));
		const set = (flag, variable) => setting(args, env, flag,
		    variable);
		const vol = (spec.volumes || []).find((v) => v.configMap &&
		    v.configMap.name === cms[0].metadata.name);
		const mount = vol && (c.volumeMounts || [])
		    .find((m) => m.name === vol.name);
		if (etcdOf(env, where))
			check(set('topology', 'VECDB_TOPOLOGY') === undefined &&
			    elected > 0, `${where}: reads etcd, but also a ` +
			    'topology file, or the nodes are not on etcd');
		else
			check(mount && set('topology', 'VECDB_TOPOLOGY') ===
			    mount.mountPath + '/topology.json', `${where}: does ` +
			    `not read ${cms[0].metadata.name} as its --topology`);
		const rest = containerPort(c, 'rest');
		const rpc = containerPort(c, 'rpc');
		const scheme = rpcScheme(spec, c, env, args, where);
		check(schemes.size === 1 && schemes.has(scheme), `${where}: ` +
		    `${scheme}, the nodes ${[...schemes]}: all TLS or none`);
		const https = scheme === 'tls+tcp' &&
		    set('https', 'VECDB_HTTPS') !== 'off';
		check(set('port', 'VECDB_PORT') === String(rest) &&
		    set('rpc', 'VECDB_RPC_URL') === `${scheme}://0.0.0.0:${rpc}` &&
		    set('host', 'VECDB_HOST') === '0.0.0.0', `${where}: ` +
		    'does not listen on its named ports');
		const svc = [...services.values()].find((s) =>
		    s.spec.clusterIP !== 'None' &&
		    selects(s.spec.selector, d.spec.template.metadata.labels));
		if (check(svc, `${where}: no Service selects the routers`)) {
			const port = (n) => svc.spec.ports.find((p) =>
			    p.name === n);
			check(port('rest') && port('rest').port === 8080 &&
			    port('rpc') && port('rpc').port === 9090,
			    `${where}: the Service does not expose REST 8080 ` +
			    'and the binary API 9090');
		}
		check(httpProbe(c.livenessProbe, '/health', c, 'rest', https),
		    `${where}: no /health liveness probe` +
		    (https ? ' over HTTPS' : ''));
		check(httpProbe(c.readinessProbe, '/ready', c, 'rest', https),
		    `${where}: no /ready readiness probe` +
		    (https ? ' over HTTPS' : ''));
	}

	// Node RPC reachable only from routers and nodes.
	const nodeLabels = nodeSets
	    .map((s) => s.spec.template.metadata.labels);
	const rpcPolicies = of('NetworkPolicy').filter((p) =>
	    nodeLabels.every((l) => selects(p.spec.podSelector.matchLabels,
	    l)));
	check(rpcPolicies.length === 1, `${name}: expected one ` +
	    'NetworkPolicy over every node pod');
	for (const p of rpcPolicies) {
		for (const rule of p.spec.ingress) {
			const ports = (rule.ports || []).map((x) => x.port);
			if (!ports.includes(7000))
				continue;
			const comps = (rule.from || []).map((f) =>
			    f.podSelector && f.podSelector.matchLabels &&
			    f.podSelector.matchLabels[
				'app.kubernetes.io/component']);
			check(comps.length > 0 && comps.every((x) =>
			    x === 'router' || x === 'node'), `${name}: ` +
			    'node RPC is open to more than routers and nodes');
		}
	}

	// The nodes' admin port open to the scraper (any source): a rule
	// naming it and no "from".
	const adminPorts = new Set(nodeSets.map((s) =>
	    containerPort(s.spec.template.spec.containers[0], 'admin')));
	for (const p of rpcPolicies)
		for (const ap of adminPorts)
			check(p.spec.ingress.some((rule) => !rule.from &&
			    (rule.ports || []).some((x) => x.port === ap ||
			    x.port === 'admin')), `${name}: the NetworkPolicy ` +
			    `keeps Prometheus off the admin port ${ap}`);

	// Every PDB covers some pods.
	for (const pdb of of('PodDisruptionBudget')) {
		check([...of('StatefulSet'), ...of('Deployment')].some((w) =>
		    selects(pdb.spec.selector.matchLabels,
		    w.spec.template.metadata.labels)), `${name}: ` +
		    `${pdb.metadata.name} selects no pods`);
	}
	return docs;
}

function main(argv) {
	let monitor = null;
	let first = null;
	for (let i = 0; i < argv.length; i++) {
		if (argv[i] === '--monitor') {
			monitor = argv[++i];
			continue;
		}
		const m = /^([^=]+)=(.+):(\d+):(\d+)$/.exec(argv[i]);
		if (!m) {
			console.error(`check_k8s: bad argument ${argv[i]}`);
			process.exit(2);
		}
		const docs = checkRendering(m[1], m[2], Number(m[3]),
		    Number(m[4]));
		first = first || docs;
	}
	if (monitor) {
		const sm = yaml.load(fs.readFileSync(monitor, 'utf8'));
		validateSchema('servicemonitor', sm);
		const named = new Set(first.filter((d) => d.kind === 'Service')
		    .flatMap((s) => s.spec.ports.map((p) => p.name)));
		for (const ep of sm.spec.endpoints)
			check(named.has(ep.port), `servicemonitor: no Service ` +
			    `port is named ${ep.port}`);
		check(first.some((d) => d.kind === 'Service' &&
		    selects(sm.spec.selector.matchLabels, d.metadata.labels)),
		    'servicemonitor: selects no Service');
	}
	console.log(`${passed} passed, ${failed} failed`);
	process.exit(failed ? 1 : 0);
}

main(process.argv.slice(2));
