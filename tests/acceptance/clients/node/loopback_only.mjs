// Preloaded into Node clients (NODE_OPTIONS=--import=...): a host name other than
// loopback's fails to resolve at once, so a client's version checks and telemetry
// never leave the machine, not even as a DNS query.
import dns from "node:dns";

const LOOPBACK = new Set(["localhost", "127.0.0.1", "::1"]);
const refused = (host) => Object.assign(new Error(`not resolved in tests: ${host}`),
                                        { code: "ENOTFOUND", hostname: host });
const lookup = dns.lookup;
dns.lookup = (host, options, callback) => {
  const done = typeof options === "function" ? options : callback;
  if (!LOOPBACK.has(String(host))) return process.nextTick(done, refused(host));
  return lookup(host, options, callback);
};
const promised = dns.promises.lookup;
dns.promises.lookup = async (host, options) => {
  if (!LOOPBACK.has(String(host))) throw refused(host);
  return promised(host, options);
};
