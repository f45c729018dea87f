// The storage floor for `cargo xtask bench`: what one D1 write per request costs under
// `wrangler dev` on this machine, with nothing else. The ingest budget compares leadglue's
// POST /v1/leads with it, measured in the same run (see xtask/src/bench.rs).
export default {
  async fetch(request, env) {
    if (new URL(request.url).pathname === "/healthz") return Response.json({ status: "ok" });
    const body = await request.text();
    await env.DB.prepare("INSERT INTO writes (id, body) VALUES (?1, ?2)")
      .bind(crypto.randomUUID(), body)
      .run();
    return Response.json({ stored: true }, { status: 201 });
  },
};
