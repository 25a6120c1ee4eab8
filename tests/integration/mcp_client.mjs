// The TypeScript SDK's client (@modelcontextprotocol/sdk) against the gateway's /mcp, as a user would write it.
// Usage: node mcp_client.mjs URL KEY   → one JSON line: protocol, tool names, the python call's result, progress.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [url, key] = process.argv.slice(2);
const transport = new StreamableHTTPClientTransport(new URL(url), {
  requestInit: { headers: { Authorization: `Bearer ${key}` } },
});
const client = new Client({ name: "llmops-test-ts", version: "1.0.0" });
await client.connect(transport);
const listed = await client.listTools();
const progress = [];
const result = await client.callTool(
  { name: "python", arguments: { code: "print(6 * 7)" } },
  undefined,
  { onprogress: (p) => progress.push(p), timeout: 120000, resetTimeoutOnProgress: true },
);
console.log(JSON.stringify({
  protocol: transport.protocolVersion ?? null,
  server: client.getServerVersion(),
  tools: listed.tools.map((t) => t.name),
  result,
  progress,
}));
await client.close();
