// ioredis_check.js — ioredis's Cluster client, unchanged, against kvnode
// (run by test_compat.py with NODE_PATH pointing at an npm install of
// ioredis@5).  Usage: node ioredis_check.js PORT [MASTERS] (MASTERS: the
// masters the cluster has, 1 unless kvnode runs --groups).  Prints "ioredis ok" and
// exits 0 when every check passed; prints the failure and exits 1 if not.
"use strict";
const Redis = require("ioredis");

function eq(a, b, what) {
	const ja = JSON.stringify(a), jb = JSON.stringify(b);
	if (ja !== jb)
		throw new Error(`${what}: ${ja} != ${jb}`);
}

async function main() {
	const port = Number(process.argv[2]);
	const masters = Number(process.argv[3] || 1);
	const c = new Redis.Cluster([{ host: "127.0.0.1", port }],
				    { redisOptions: { connectTimeout: 5000 } });
	eq(await c.set("io:a", "1"), "OK", "set");
	eq(await c.get("io:a"), "1", "get");
	eq(await c.incr("io:ctr"), 1, "incr");
	// Keys of different slots, each routed to its node.
	for (let i = 0; i < 100; i++)
		await c.set(`io:k${i}`, String(i));
	eq(await c.get("io:k42"), "42", "routed get");
	// A pipeline and a transaction on one slot (hash tag).
	const p = await c.pipeline().set("{io}x", "1").incr("{io}x")
		.get("{io}x").exec();
	eq(p, [[null, "OK"], [null, 2], [null, "2"]], "pipeline");
	const t = await c.multi().set("{io}t", "5").incrby("{io}t", 5)
		.get("{io}t").exec();
	eq(t, [[null, "OK"], [null, 10], [null, "10"]], "multi");
	// A rejected transaction applies nothing.
	let failed = false;
	try {
		await c.multi().set("{io}bad", "1").call("nosuchcmd")
			.exec();
	} catch (e) {
		failed = true;
	}
	eq(failed, true, "bad multi fails");
	eq(await c.exists("{io}bad"), 0, "bad multi applied nothing");
	const nodes = c.nodes("master");
	eq(nodes.length, masters, "masters");
	c.disconnect();
	console.log("ioredis ok");
}

main().catch((e) => {
	console.error("ioredis check failed:", e);
	process.exit(1);
});
