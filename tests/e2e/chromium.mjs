// How every leadglue browser run starts Debian's Chromium: headless, and kept off the closed
// network (without these flags it keeps trying to reach Google's hosts). Used by the browser
// tests and by `cargo xtask bench`'s widget timings.
export const launchOptions = (executablePath) => ({
  executablePath,
  headless: true,
  viewport: { width: 1280, height: 900 },
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
