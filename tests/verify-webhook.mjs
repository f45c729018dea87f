// Verifies a webhook delivery with the Standard Webhooks reference library (npm
// `standardwebhooks`), independently of leadglue's own signing code. Reads
// {"secret", "headers", "body"} as JSON on stdin; prints the verified payload, or fails.
import { Webhook } from "standardwebhooks";

let input = "";
for await (const chunk of process.stdin) input += chunk;
const { secret, headers, body } = JSON.parse(input);
try {
  const payload = new Webhook(secret).verify(body, headers);
  process.stdout.write(JSON.stringify(payload));
} catch (err) {
  process.stderr.write(`verification failed: ${err.message}\n`);
  process.exit(1);
}
