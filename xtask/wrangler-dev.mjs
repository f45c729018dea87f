// `wrangler dev` for tests and benchmarks, through wrangler's own start-up API
// (`unstable_startWorker`) so that its DevTools inspector can be left off, which the command
// line cannot do.
//
// Why: with the inspector on, wrangler's inspector proxy turns on DevTools' Network domain and
// relays every event of every subrequest (each D1 query among them) to the wrangler process,
// which appends it to its debug log file. That cost ~2.5 ms of CPU per D1 query on the
// benchmark machine (wrangler and its proxy together), more than the Worker's own work, and
// exists only under `wrangler dev`. Benchmarks measure the Worker, so they run without it, and
// so do tests, which gain its speed and no behaviour (`cargo xtask dev` keeps the inspector).
//
// Arguments, as `wrangler dev` takes them: --config FILE --port P --persist-to DIR
// [--var NAME:VALUE]... [--test-scheduled]. Runs until killed (xtask stops its process group).
import { unstable_startWorker } from "wrangler";

// Warnings only. `dev.logLevel` below holds while wrangler starts the Worker; what Miniflare logs
// afterwards (a `[wrangler:info] QUEUE …` line per queue batch) goes through wrangler's logger at
// WRANGLER_LOG's level, read at each line.
process.env.WRANGLER_LOG ??= "warn";

const args = process.argv.slice(2);
const opts = { vars: {} };
for (let i = 0; i < args.length; i++) {
  const arg = args[i];
  if (arg === "--test-scheduled") opts.testScheduled = true;
  else if (arg === "--var") {
    const [name, ...value] = args[++i].split(":");
    opts.vars[name] = { type: "plain_text", value: value.join(":") };
  } else if (["--config", "--port", "--persist-to"].includes(arg)) opts[arg.slice(2)] = args[++i];
  else throw new Error(`wrangler-dev.mjs: unknown argument ${arg}`);
}

const worker = await unstable_startWorker({
  config: opts.config,
  bindings: opts.vars,
  dev: {
    server: { hostname: "127.0.0.1", port: Number(opts.port) },
    inspector: false,
    persist: opts["persist-to"],
    logLevel: "warn",
    watch: false,
    liveReload: false,
    testScheduled: opts.testScheduled ?? false,
  },
});
await worker.ready;
